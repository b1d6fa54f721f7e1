//! What the publisher pushes and what polls cost: every change in order,
//! a restart survived, expiry and clear published and kept, unchanged polls
//! of a few bytes, ages kept across restarts.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use status_board::protocol::{self, Event, ExtendedReply, Removal};

use crate::common::{
    self, Running, Server, Watcher, client, exit_code, free_port, run_client, run_server, snapshot,
};
use crate::{plain, publishing, restarted};

/// Runs the client to completion: exit code, stdout, stderr.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    run_client(args, "")
}

/// A SUB socket on the server's publisher, subscribed to everything, once
/// the subscription has reached the publisher.
fn subscribed(server: &Server) -> (zmq::Context, zmq::Socket) {
    let publisher = snapshot(&server.endpoint).header.publish[0].clone();
    let context = zmq::Context::new();
    let socket = common::subscriber(&context, &publisher, None);
    // The subscription travels to the publisher on its own; a heartbeat says it has.
    common::heartbeat(&socket);
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
    let (_context, sub) = subscribed(&server);

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
        let socket = common::req_socket(&context, &endpoint, None);
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
    let snapshot = snapshot(&server.endpoint);
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
            assert_eq!(
                doc["seq"].as_u64(),
                Some(snapshot(&second.endpoint).header.seq)
            );
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
    let (_context, sub) = subscribed(&server);
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
    let socket = common::req_socket(&context, &server.endpoint, None);
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
    assert_eq!(
        snapshot(&server.endpoint).entries[0].set_at_ms,
        Some(hour_ago)
    );
    server.request_text("b: 2");
    let again = restarted(server, state);
    let entries = snapshot(&again.endpoint).entries;
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
        let mut all = vec!["--in-memory", "0"];
        all.extend(&args);
        let (code, _, stderr) = run_server(&all);
        assert_ne!(code, Some(0), "{args:?}");
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
    }
}

#[test]
fn scrolled_and_json_watchers_print_no_board_before_the_first_contact_and_say_so() {
    let dead = format!("tcp://127.0.0.1:{}", free_port());
    for json in [true, false] {
        let mut args = vec!["_", "--endpoint", &dead, "--timeout", "300"];
        if json {
            args.push("--json");
        }
        let (child, out, err) = common::spawn_piped(&mut client(&args));
        let mut child = Running(child);
        let said = err.find("no contact yet");
        assert!(
            said.contains(&format!("no contact yet with {dead}: no board is shown")),
            "{said}"
        );
        assert_eq!(common::stop_with(&mut child, libc::SIGINT), Some(0));
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
    // Returns after two boards.
    let (code, rest) = exit_code(session);
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(code, 0, "{rest}");
}
