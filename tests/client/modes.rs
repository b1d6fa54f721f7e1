//! The client's modes: one-shot, piped, watching (plain and JSON), and at
//! a prompt on a terminal, where a typed status is also kept fresh.

use std::process::Stdio;
use std::time::{Duration, Instant};

use rexpect::session::PtySession;

use crate::common::{
    self, EXIT_TIMEOUT, Running, Server, TERMS, assert_leaves_cleanly, client, free_port,
    run_client as run, wait_timeout,
};

#[test]
fn one_shot_posts_prints_the_board_and_exits_0() {
    let server = Server::start(&[]);
    server.request_text("alice: in a meeting");
    let (code, stdout, stderr) = run(
        &[
            "ci",
            "--endpoint",
            &server.endpoint,
            "--set",
            "build #42 green",
        ],
        "",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "- alice: in a meeting\n- ci: build #42 green\n");
    assert_eq!(server.request_text("_:"), stdout);
}

#[test]
fn one_shot_with_port_and_host_as_the_original() {
    let server = Server::start(&[]);
    let port = server.port().to_string();
    let (code, stdout, _) = run(&["ci", &port, "127.0.0.1", "--set", "green"], "");
    assert_eq!(code, Some(0));
    assert_eq!(stdout, "- ci: green\n");
}

#[test]
fn piped_lines_are_updates_and_eof_exits_0() {
    let server = Server::start(&[]);
    let (code, stdout, stderr) = run(
        &["bob", "--endpoint", &server.endpoint],
        "first\nsecond\nthird\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "----------------- 0\n- bob: first\n\n\
         ----------------- 1\n- bob: second\n\n\
         ----------------- 2\n- bob: third\n\n"
    );
    assert!(!stdout.contains("bob: bob:"), "no prompts in piped mode");
    assert_eq!(server.request_text("_:"), "- bob: third\n");
}

#[test]
fn quiet_prints_nothing_on_success() {
    let server = Server::start(&[]);
    let (code, stdout, _) = run(&["bob", "--endpoint", &server.endpoint, "-q"], "a\nb\n");
    assert_eq!((code, stdout.as_str()), (Some(0), ""));
    let (code, stdout, _) = run(
        &["ci", "--endpoint", &server.endpoint, "-q", "--set", "x"],
        "",
    );
    assert_eq!((code, stdout.as_str()), (Some(0), ""));
    assert_eq!(server.request_text("_:"), "- bob: b\n- ci: x\n");
}

#[test]
fn watch_prints_count_boards_then_exits_0() {
    let server = Server::start(&[]);
    server.request_text("Jackson: I'm BAD");
    let started = Instant::now();
    let (code, stdout, stderr) = run(
        &[
            "_",
            "--endpoint",
            &server.endpoint,
            "--interval",
            "0.2",
            "--count",
            "3",
        ],
        "",
    );
    assert_eq!(code, Some(0), "{stderr}");
    let block = |n| format!("----------------- {n}\n- Jackson: I'm BAD\n\n");
    assert_eq!(
        stdout,
        format!(
            "Connecting to '{}'.\n{}{}{}",
            server.endpoint,
            block(0),
            block(1),
            block(2)
        )
    );
    // A fractional interval honoured: two of them passed between the three
    // boards (a bound below, which no busy machine breaks), and not two of
    // whole seconds (the default interval is 2 s).
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "fractional interval honoured: 3 boards in {took:?}"
    );
    assert!(
        took < Duration::from_secs(2),
        "fractional interval honoured: 3 boards in {took:?}"
    );
}

#[test]
fn json_boards_parse_back() {
    let server = Server::start(&[]);
    server.request_text("alice: in a meeting: room 4");
    server.request_text("bob:tight");
    let (code, stdout, _) = run(
        &[
            "ci",
            "--endpoint",
            &server.endpoint,
            "--set",
            "say \"hi\"",
            "--json",
        ],
        "",
    );
    assert_eq!(code, Some(0));
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(
        doc,
        serde_json::json!({"entries": [
            {"name": "alice", "status": "in a meeting: room 4"},
            {"name": "bob", "status": "tight"},
            {"name": "ci", "status": "say \"hi\""},
        ]})
    );

    let (code, stdout, _) = run(
        &[
            "_",
            "--endpoint",
            &server.endpoint,
            "--json",
            "--interval",
            "0.01",
            "--count",
            "2",
        ],
        "",
    );
    assert_eq!(code, Some(0));
    let docs: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON document per line"))
        .collect();
    assert_eq!(docs.len(), 2);
    for watched in &docs {
        // Our server also says when each status was set, and the board's number.
        assert_eq!(watched["seq"], 3, "{watched}");
        let entries = watched["entries"].as_array().expect("entries");
        let plain: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| serde_json::json!({"name": e["name"], "status": e["status"]}))
            .collect();
        assert_eq!(serde_json::Value::from(plain), doc["entries"]);
        for entry in entries {
            let set_at = entry["set_at"].as_str().expect("set_at");
            humantime::parse_rfc3339(set_at).expect("RFC 3339");
            assert!(
                entry["age_s"].as_u64().is_some_and(|age| age < 60),
                "{entry}"
            );
        }
    }
}

#[test]
fn the_environment_gives_name_and_endpoint_and_arguments_win() {
    let server = Server::start(&[]);
    let other = Server::start(&[]);
    let mut command = client(&["--set", "from the environment"]);
    command
        .env("STATUS_BOARD_NAME", "ci")
        .env("STATUS_BOARD_ENDPOINT", &server.endpoint);
    let (code, stdout, stderr) = common::run_command(&mut command, "");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "- ci: from the environment\n");
    let mut command = client(&["bob", "--endpoint", &other.endpoint, "--set", "given"]);
    command
        .env("STATUS_BOARD_NAME", "ci")
        .env("STATUS_BOARD_ENDPOINT", &server.endpoint);
    let (code, stdout, _) = common::run_command(&mut command, "");
    assert_eq!((code, stdout.as_str()), (Some(0), "- bob: given\n"));
    let port = other.port().to_string();
    let mut command = client(&["carol", &port, "--set", "by port"]);
    command.env("STATUS_BOARD_ENDPOINT", &server.endpoint);
    let (code, _, stderr) = common::run_command(&mut command, "");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(other.request_text("_:"), "- bob: given\n- carol: by port\n");
    assert_eq!(server.request_text("_:"), "- ci: from the environment\n");
}

#[test]
fn localhost_works_for_both_programs() {
    let port = free_port();
    let server = Server::start_raw(&[&port.to_string(), "localhost", "--in-memory"]);
    assert_eq!(
        server.endpoint,
        format!("tcp://localhost:{port}"),
        "the Waiting line says the host as given, as the original does"
    );
    let (code, stdout, stderr) = run(
        &["alice", &port.to_string(), "localhost", "--set", "here"],
        "",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "- alice: here\n");
}

#[test]
fn ctrl_c_interrupts_a_piped_client_waiting_on_stdin() {
    use std::io::Write;
    let server = Server::start(&[]);
    let (piped, stdout, _stderr) =
        common::spawn_piped(client(&["bob", "--endpoint", &server.endpoint]).stdin(Stdio::piped()));
    let mut piped = Running(piped);
    let mut stdin = piped.stdin.take().expect("piped stdin");
    stdin.write_all(b"first\n").expect("write a line");
    // Its board is printed: the line was answered, and the client is back to
    // waiting on stdin with nothing owed.
    stdout.until("- bob: first");
    let started = Instant::now();
    common::send_signal(&piped, libc::SIGINT);
    let status = wait_timeout(&mut piped, EXIT_TIMEOUT).expect("exits on Ctrl-C");
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(stdin);
}

/// The client as a person runs it: at `name`'s prompt, on a pseudo-terminal
/// of the given kind.
fn at_the_prompt(name: &str, server: &Server, term: &str) -> PtySession {
    common::on_a_terminal(client(&[name, "--endpoint", &server.endpoint]), term)
}

#[test]
fn an_empty_line_at_the_prompt_shows_the_board_and_posts_nothing() {
    for term in TERMS {
        let server = Server::start(&[]);
        server.request_text("bob: in a meeting");
        let mut session = at_the_prompt("bob", &server, term);
        session.exp_string("bob: ").expect("prompt");
        session.send_line("").expect("Enter");
        session
            .exp_string("- bob: in a meeting")
            .expect("the board, unchanged");
        session.exp_string("bob: ").expect("prompt again");
        session.send_control('d').expect("Ctrl-D");
        assert_leaves_cleanly(session, term);
        assert_eq!(
            server.request_text("_:"),
            "- bob: in a meeting\n",
            "TERM={term}"
        );
    }
}

#[test]
fn interactive_prompts_shows_the_board_and_leaves_on_ctrl_d() {
    for term in TERMS {
        let server = Server::start(&[]);
        server.request_text("Jackson: I'm BAD");
        let mut session = at_the_prompt("Madonna", &server, term);
        session
            .exp_string(&format!("Connecting to '{}'.", server.endpoint))
            .expect("greeting");
        session.exp_string("Madonna: ").expect("prompt");
        session.send_line("I am a material girl").expect("type");
        session
            .exp_string("----------------- 0")
            .expect("numbered block");
        session
            .exp_string("- Jackson: I'm BAD\r\n- Madonna: I am a material girl\r\n")
            .expect("board");
        session.exp_string("Madonna: ").expect("prompt again");
        session.send_control('d').expect("Ctrl-D");
        assert_leaves_cleanly(session, term);
        assert_eq!(
            server.request_text("_:"),
            "- Jackson: I'm BAD\n- Madonna: I am a material girl\n"
        );
    }
}

#[test]
fn interactive_ctrl_c_at_the_prompt_leaves_cleanly() {
    for term in TERMS {
        let server = Server::start(&[]);
        let mut session = at_the_prompt("alice", &server, term);
        session.exp_string("alice: ").expect("prompt");
        session.send_control('c').expect("Ctrl-C");
        assert_leaves_cleanly(session, term);
    }
}

#[test]
fn a_blank_line_at_the_prompt_shows_the_board_and_posts_nothing() {
    let server = Server::start(&[]);
    server.request_text("bob: in a meeting");
    let mut session = at_the_prompt("bob", &server, "xterm");
    session.exp_string("bob: ").expect("prompt");
    session.send_line("   ").expect("spaces and Enter");
    session
        .exp_string("- bob: in a meeting")
        .expect("the board, unchanged");
    session.exp_string("bob: ").expect("prompt again");
    session.send_control('d').expect("Ctrl-D");
    assert_leaves_cleanly(session, "xterm");
    assert_eq!(server.request_text("_:"), "- bob: in a meeting\n");
}

/// Lines of the server's log that are updates of `name`, counted until `wanted`.
fn wait_for_updates(server: &Server, name: &str, wanted: usize) {
    let mut seen = 0;
    while seen < wanted {
        let line = server
            .stdout
            .next(&format!("update {} of {name}", seen + 1));
        if line.starts_with(&format!("received name: '{name}'")) {
            seen += 1;
        }
    }
}

#[test]
fn a_typers_status_is_refreshed_before_the_ttl_runs_out() {
    use std::io::Write;
    // Not --quiet: each update, a refresh too, is a line of the server's log.
    let server = Server::start(&["--ttl", "3s"]);
    let mut session = at_the_prompt("bob", &server, "xterm");
    session.exp_string("bob: ").expect("prompt");
    session.send_line("here").expect("type");
    session
        .exp_string("refreshed every 1s so that it does not expire; Ctrl-D to stop")
        .expect("said once, at the first post");
    let (pipe, _pipe_out, pipe_err) =
        common::spawn_piped(client(&["ci", "--endpoint", &server.endpoint]).stdin(Stdio::piped()));
    let mut pipe = Running(pipe);
    let mut stdin = pipe.stdin.take().expect("piped stdin");
    stdin.write_all(b"building\n").expect("write");
    pipe_err.find("refreshed every 1s");
    // Seven refreshes, a second apart: more than twice the TTL, idle.
    wait_for_updates(&server, "bob", 8);
    let board = server.request_text("_:");
    assert!(
        board.contains("- bob: here") && board.contains("- ci: building"),
        "{board}"
    );

    // Changed elsewhere: left alone, not refreshed back, and said.
    server.request_text("bob: taken over");
    session
        .exp_string("your status was changed elsewhere")
        .expect("said at the next look");
    let expired = server.stderr.find("expired name");
    assert!(expired.contains("'bob'"), "{expired}");
    let board = server.request_text("_:");
    assert!(!board.contains("bob"), "{board}");
    assert!(
        board.contains("- ci: building"),
        "the feed's is still refreshed: {board}"
    );

    session.send_control('d').expect("Ctrl-D");
    assert_leaves_cleanly(session, "xterm");
    // Stopped while the feed is still open: nothing of it may have expired.
    let (_, _, log) = server.stop_with_output(libc::SIGTERM);
    let expired: Vec<&String> = log.iter().filter(|l| l.contains("expired")).collect();
    assert!(expired.is_empty(), "nothing else expired: {expired:?}");
    drop(stdin);
    let status = wait_timeout(&mut pipe, EXIT_TIMEOUT).expect("the feed ends with its input");
    assert_eq!(status.code(), Some(0));
}
