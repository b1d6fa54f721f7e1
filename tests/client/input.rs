//! What the client refuses to send, and says so: names and texts the
//! protocol cannot carry, lines that are not UTF-8 or empty, a port where
//! the name goes; and `--sanitize`, which makes them fit instead.

use crate::common::{Server, run_client as run};

#[test]
fn an_error_reply_goes_to_stderr_and_exits_1() {
    let server = Server::start(&["--max-name", "4"]);
    let (code, stdout, stderr) = run(
        &["toolong", "--endpoint", &server.endpoint, "--set", "x"],
        "",
    );
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("name is 7 bytes, the limit is 4"),
        "{stderr}"
    );
}

#[test]
fn a_refused_line_in_a_pipe_is_said_and_the_lines_after_it_are_posted() {
    let server = Server::start(&[]);
    let long = "x".repeat(5000);
    let (code, stdout, stderr) = run(
        &["eve", "--endpoint", &server.endpoint],
        format!("ok\nbad \u{1b}[2J\nafter\n{long}\nlast\n"),
    );
    assert_eq!(code, Some(1), "some lines were refused: {stderr}");
    assert_eq!(
        stdout,
        "----------------- 0\n- eve: ok\n\n\
         ----------------- 1\n- eve: after\n\n\
         ----------------- 2\n- eve: last\n\n"
    );
    let said: Vec<&str> = stderr.lines().collect();
    assert!(
        said[0].contains("line 2 refused") && said[0].contains("control character"),
        "{stderr}"
    );
    assert!(
        said[1].contains("line 4 refused") && said[1].contains("the limit is 4096"),
        "{stderr}"
    );
    assert!(said[2].contains("refused 2 of 5 lines"), "{stderr}");
    assert_eq!(server.request_text("_:"), "- eve: last\n");
}

#[test]
fn sanitize_makes_a_coloured_log_pipe_fit_to_post() {
    let server = Server::start(&[]);
    let long = "y".repeat(5000);
    let (code, stdout, stderr) = run(
        &["ci", "--endpoint", &server.endpoint, "--sanitize", "--json"],
        format!("\u{1b}[1;32mPASS\u{1b}[0m\tbuild #42\n{long}\n"),
    );
    assert_eq!(code, Some(0), "{stderr}");
    let docs: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(docs[0]["entries"][0]["status"], "PASS build #42");
    let cut = docs[1]["entries"][0]["status"].as_str().expect("status");
    assert!(
        cut.len() < 4096 && cut.chars().all(|c| c == 'y'),
        "{}",
        cut.len()
    );
}

#[test]
fn a_port_where_the_name_goes_is_refused_with_a_hint_and_a_status_may_start_with_a_dash() {
    let server = Server::start(&[]);
    let (code, _, stderr) = run(&["--set", "hello", "21001"], "");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("did you mean NAME PORT"), "{stderr}");
    let (code, stdout, stderr) = run(
        &[
            "ci",
            "--endpoint",
            &server.endpoint,
            "--set",
            "-1 tests failing",
        ],
        "",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "- ci: -1 tests failing\n");
}

#[test]
fn names_and_texts_the_protocol_cannot_carry_are_usage_errors() {
    for (args, says) in [
        (vec!["a:b", "--set", "x"], "contains ':'"),
        (vec!["alice", "--set", "two\nlines"], "control character"),
        (vec!["_", "--set", "x"], "only reads the board"),
        (
            vec!["alice", "--count", "2", "--set", "x"],
            "--count only applies",
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--endpoint", "tcp://127.0.0.1:9"]);
        let (code, _, stderr) = run(&all, "");
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn an_invalid_endpoint_is_a_usage_error() {
    let (code, _, stderr) = run(&["bob", "--endpoint", "nonsense", "--set", "x"], "");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot connect to nonsense"), "{stderr}");
}

#[test]
fn a_piped_line_that_is_not_utf8_is_refused_by_number_and_the_feed_goes_on() {
    let server = Server::start(&[]);
    let input = b"ok\ncaf\xe9\nlast\n";
    let (code, stdout, stderr) = run(&["alice", "--endpoint", &server.endpoint], input);
    assert_eq!(code, Some(1), "a refused line: {stderr}");
    let said: Vec<&str> = stderr.lines().collect();
    assert!(
        said[0].contains("line 2 refused") && said[0].contains("not UTF-8"),
        "{stderr}"
    );
    assert!(said[1].contains("refused 1 of 3 lines"), "{stderr}");
    assert!(
        stdout.contains("- alice: ok") && stdout.contains("- alice: last"),
        "{stdout}"
    );
    assert_eq!(
        server.request_text("_:"),
        "- alice: last\n",
        "the line after it was posted"
    );

    // --sanitize converts it, lossy, and posts it.
    let (code, stdout, stderr) = run(
        &[
            "bob",
            "--endpoint",
            &server.endpoint,
            "--sanitize",
            "--json",
        ],
        input,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let statuses: Vec<String> = stdout
        .lines()
        .map(|line| {
            let doc: serde_json::Value = serde_json::from_str(line).expect("JSON");
            let bob = doc["entries"]
                .as_array()
                .and_then(|e| e.iter().find(|e| e["name"] == "bob"))
                .expect("bob on the board");
            bob["status"].as_str().expect("a status").to_owned()
        })
        .collect();
    assert_eq!(statuses, ["ok", "caf\u{fffd}", "last"]);
}

#[test]
fn sanitize_applies_to_set_too() {
    let server = Server::start(&[]);
    let set = [
        "bob",
        "--endpoint",
        &server.endpoint,
        "--set",
        "a\tb \u{1b}[1mbold",
    ];
    let (code, _, stderr) = run(&set, "");
    assert_eq!(code, Some(2), "refused without --sanitize: {stderr}");
    assert!(stderr.contains("control character"), "{stderr}");
    let mut sanitized = set.to_vec();
    sanitized.push("--sanitize");
    let (code, stdout, stderr) = run(&sanitized, "");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "- bob: a b bold\n");
}

#[test]
fn an_empty_status_is_refused_with_a_hint_and_allow_empty_posts_it() {
    let server = Server::start(&[]);
    server.request_text("bob: here");
    for text in ["", "   ", "\t"] {
        let (code, _, stderr) = run(
            &[
                "bob",
                "--endpoint",
                &server.endpoint,
                "--set",
                text,
                "--sanitize",
            ],
            "",
        );
        assert_eq!(code, Some(2), "{text:?}: {stderr}");
        assert!(
            stderr.contains("empty")
                && stderr.contains("--clear")
                && stderr.contains("--allow-empty"),
            "{text:?}: {stderr}"
        );
    }
    assert_eq!(
        server.request_text("_:"),
        "- bob: here\n",
        "nothing was posted"
    );
    // A blank piped line is a refused line: said by number, the rest posted.
    let (code, _, stderr) = run(&["ci", "--endpoint", &server.endpoint], "one\n  \ntwo\n");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("line 2 refused") && stderr.contains("--allow-empty"),
        "{stderr}"
    );
    assert_eq!(server.request_text("_:"), "- bob: here\n- ci: two\n");
    // --allow-empty posts it: legal on the wire, as the original has it.
    let (code, stdout, stderr) = run(
        &[
            "bob",
            "--endpoint",
            &server.endpoint,
            "--set",
            "",
            "--allow-empty",
        ],
        "",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "- bob: \n- ci: two\n");
    let (code, _, stderr) = run(
        &["ci", "--endpoint", &server.endpoint, "--allow-empty"],
        "\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(server.request_text("_:"), "- bob: \n- ci: \n");
}
