//! The Python original's programs, extracted from the reference at test time,
//! against our binaries: outputs must match the original's byte for byte.
//!
//! Its own harness (libtest-mimic), so that a missing part is decided at run
//! time: without python3 and pyzmq, or without the reference, these tests are
//! reported as ignored, with the reason, and fail under `CI=true`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Lines, PythonServer, Reference, Running, Server, Watcher, Web, assert_nothing_raw, run_client,
    run_with_input,
};
use serde_json::json;

/// A test that runs the original programs of `Reference`.
type InteropTest = fn(&Reference);

/// Every test here needs the original; each is run with it.
const TESTS: [(&str, InteropTest); 7] = [
    (
        "original_client_sees_the_same_against_both_servers",
        original_client_sees_the_same_against_both_servers,
    ),
    (
        "our_client_sees_the_same_against_both_servers",
        our_client_sees_the_same_against_both_servers,
    ),
    (
        "clear_against_the_original_says_it_cannot_and_changes_nothing",
        clear_against_the_original_says_it_cannot_and_changes_nothing,
    ),
    (
        "the_watcher_falls_back_to_polling_the_original",
        the_watcher_falls_back_to_polling_the_original,
    ),
    (
        "the_original_client_reads_an_anonymous_endpoint_and_cannot_write",
        the_original_client_reads_an_anonymous_endpoint_and_cannot_write,
    ),
    (
        "the_web_gateway_polls_the_original_and_posts_to_it",
        the_web_gateway_polls_the_original_and_posts_to_it,
    ),
    (
        "a_hostile_status_stored_by_the_original_reaches_no_terminal_raw",
        a_hostile_status_stored_by_the_original_reaches_no_terminal_raw,
    ),
];

fn main() {
    let missing = common::find_reference().err();
    let tests = TESTS
        .into_iter()
        .map(|(name, test)| -> common::Needing {
            let run = move || {
                let reference = common::find_reference()
                    .map_err(|why| format!("cannot run the Python original: {why}"))?;
                test(&reference);
                Ok(())
            };
            (name, Box::new(run))
        })
        .collect();
    common::run_needing("interop", missing, common::REFERENCE_HELP, tests)
}

const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the original client with `lines` on stdin; it crashes at EOF, as it does.
fn python_client(reference: &Reference, name: &str, port: u16, lines: &str) -> String {
    let output = run_with_input(
        Command::new("python3")
            .arg("-u")
            .arg(&reference.client)
            .args([name, &port.to_string(), "127.0.0.1"]),
        lines,
        CLIENT_TIMEOUT,
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8 output")
        .replace(&format!("'{port}'"), "'PORT'")
}

/// Runs the original watcher until it has printed its first board, then stops it.
fn python_watcher(reference: &Reference, port: u16) -> String {
    let mut child = Running(
        Command::new("python3")
            .arg("-u")
            .arg(&reference.client)
            .args(["_", &port.to_string(), "127.0.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the Python watcher"),
    );
    let lines = Lines::from(child.stdout.take().expect("piped"));
    // The board ends with the blank line that print() adds after it.
    let seen = lines.until("");
    drop(child);
    seen.join("\n").replace(&format!("'{port}'"), "'PORT'")
}

/// The whole session of the reference, run by the original client against one server.
fn session(reference: &Reference, port: u16) -> Vec<String> {
    vec![
        python_client(reference, "Jackson", port, "I'm BAD\n"),
        python_client(reference, "Madonna", port, "I am a material girl\n"),
        python_client(reference, "Jackson", port, "still BAD\nI'm BAD\n"),
        python_watcher(reference, port),
    ]
}

fn original_client_sees_the_same_against_both_servers(reference: &Reference) {
    let python = PythonServer::start(reference);
    let expected = session(reference, python.port);

    let ours = Server::start_raw(&["0", "--in-memory"]);
    let actual = session(reference, ours.port());
    assert_eq!(actual, expected);

    // Not two equally broken runs: the transcript is the reference's.
    assert_eq!(
        expected[1],
        "Connecting to port 'PORT' of host '127.0.0.1'.\n\
         Madonna: ----------------- 0\n\
         - Jackson: I'm BAD\n\
         - Madonna: I am a material girl\n\
         \n\
         Madonna: "
    );
    assert!(
        expected[3].ends_with(
            "----------------- 0\n- Jackson: I'm BAD\n- Madonna: I am a material girl\n"
        ),
        "{:?}",
        expected[3]
    );

    // The consoles say the same too: one line per update, four updates.
    let four_lines = |lines: &Lines| -> Vec<String> {
        (0..4).map(|_| lines.next("a 'received' line")).collect()
    };
    let python_console = four_lines(&python.stdout);
    assert!(
        python_console
            .iter()
            .all(|l| l.starts_with("received name: ")),
        "{python_console:?}"
    );
    assert_eq!(four_lines(&ours.stdout), python_console);
    let (_, rest, _) = ours.stop_with_output(libc::SIGINT);
    assert_eq!(rest, Vec::<String>::new(), "polls print nothing");
}

/// Our client in every non-interactive mode against one server, endpoint normalised.
fn our_client_session(port: u16) -> Vec<String> {
    let port_text = port.to_string();
    let run = |args: &[&str], stdin: &str| {
        let mut command = common::client(args);
        command.args([port_text.as_str(), "127.0.0.1"]);
        let output = run_with_input(&mut command, stdin, CLIENT_TIMEOUT);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        String::from_utf8(output.stdout)
            .expect("UTF-8 output")
            .replace(&format!("'{port}'"), "'PORT'")
    };
    vec![
        run(&["--set", "I'm BAD", "Jackson"], ""),
        run(&["Madonna"], "I am a material girl\nstill material\n"),
        run(&["--json", "--set", "a: colon", "ci"], ""),
        run(&["--interval", "0.05", "--count", "2", "_"], ""),
        run(&["--json", "--count", "1", "_"], ""),
    ]
}

fn our_client_sees_the_same_against_both_servers(reference: &Reference) {
    let python = PythonServer::start(reference);
    let expected = our_client_session(python.port);
    let ours = Server::start_raw(&["0", "--quiet", "--in-memory"]);
    let actual = our_client_session(ours.port());
    assert_eq!(actual[..4], expected[..4]);

    // The JSON watcher gets ages and the board's number from our server only;
    // against the original it falls back to the plain board.
    let watched = |text: &str| -> serde_json::Value {
        serde_json::from_str(text).expect("one JSON document")
    };
    let (ours_doc, original_doc) = (watched(&actual[4]), watched(&expected[4]));
    assert!(original_doc.get("seq").is_none(), "{original_doc}");
    assert_eq!(ours_doc["seq"], 4, "{ours_doc}");
    let plain = |doc: &serde_json::Value| -> Vec<serde_json::Value> {
        let entries = doc["entries"].as_array().expect("entries");
        entries
            .iter()
            .map(|e| serde_json::json!({"name": e["name"], "status": e["status"]}))
            .collect()
    };
    assert_eq!(plain(&ours_doc), plain(&original_doc));
    assert!(ours_doc["entries"][0]["set_at"].is_string(), "{ours_doc}");

    // And what they say is the board: not two equally broken runs.
    assert_eq!(expected[0], "- Jackson: I'm BAD\n");
    assert_eq!(
        expected[1],
        "----------------- 0\n- Jackson: I'm BAD\n- Madonna: I am a material girl\n\n\
         ----------------- 1\n- Jackson: I'm BAD\n- Madonna: still material\n\n"
    );
    let doc: serde_json::Value = serde_json::from_str(&expected[4]).expect("JSON");
    assert_eq!(
        doc["entries"][2],
        serde_json::json!({"name": "ci", "status": "a: colon"})
    );
    assert!(
        expected[3]
            .starts_with("Connecting to port 'PORT' of host '127.0.0.1'.\n----------------- 0\n")
    );
}

fn clear_against_the_original_says_it_cannot_and_changes_nothing(reference: &Reference) {
    let python = PythonServer::start(reference);
    let (code, _, _) = run_client(
        &["alice", "--endpoint", &python.endpoint, "--set", "here"],
        "",
    );
    assert_eq!(code, Some(0));
    let (code, stdout, stderr) =
        run_client(&["alice", "--endpoint", &python.endpoint, "--clear"], "");
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("only the original protocol") && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    let board = common::request_parts(&python.endpoint, &[b"_:"]).expect("a reply");
    assert_eq!(board, b"- alice: here\n");
}

fn the_watcher_falls_back_to_polling_the_original(reference: &Reference) {
    let python = PythonServer::start(reference);
    let (code, _, _) = run_client(
        &["alice", "--endpoint", &python.endpoint, "--set", "here"],
        "",
    );
    assert_eq!(code, Some(0));
    let watcher = Watcher::start(&python.endpoint, &["--interval", "0.1"]);
    let first = watcher.next("the first board");
    // No ages and no number: the original does not have them.
    assert_eq!(
        first,
        json!({"entries": [{"name": "alice", "status": "here"}]})
    );
    let (code, _, _) = run_client(
        &["bob", "--endpoint", &python.endpoint, "--set", "later"],
        "",
    );
    assert_eq!(code, Some(0));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "bob never showed");
        let doc = watcher.next("a polled board");
        if doc["entries"].as_array().is_some_and(|e| e.len() == 2) {
            assert_eq!(doc["entries"][1], json!({"name": "bob", "status": "later"}));
            break;
        }
    }
    let stray = watcher.stop();
    assert!(stray.is_empty(), "nothing on stderr: {stray:?}");
}

fn the_original_client_reads_an_anonymous_endpoint_and_cannot_write(reference: &Reference) {
    let users = common::UsersFile::new(&["alice"]);
    let port = common::free_port();
    let anonymous = format!("tcp://127.0.0.1:{port}");
    let server = Server::start(&["--auth", users.path(), "--anonymous", &anonymous, "--quiet"]);
    assert_eq!(
        server.request_text_as("alice", common::PASSWORD, "alice: in a meeting"),
        "- alice: in a meeting\n"
    );
    let watched = python_watcher(reference, port);
    assert!(
        watched.ends_with("----------------- 0\n- alice: in a meeting\n"),
        "{watched:?}"
    );
    let wrote = python_client(reference, "mallory", port, "hacked\n");
    assert!(
        wrote.contains("error: forbidden: anonymous clients may only read"),
        "{wrote:?}"
    );
    assert_eq!(
        common::request_text(&anonymous, "_:"),
        "- alice: in a meeting\n",
        "nothing changed"
    );
}

fn the_web_gateway_polls_the_original_and_posts_to_it(reference: &Reference) {
    use std::io::BufRead;
    let python = PythonServer::start(reference);
    let web = Web::start(&python.endpoint, &["--interval", "0.1"]);
    let posted = web.post("name=alice&status=from+the+web", "");
    assert_eq!(posted.status, 200, "{}", posted.body);
    assert_eq!(posted.body, "- alice: from the web\n");
    // The original has no snapshot and no publisher: the gateway polls `_:`,
    // and its board says so (no times, `original`).
    let mut lines = web.events().lines();
    let board = loop {
        let line = lines
            .next()
            .expect("the stream goes on")
            .expect("a line within the bound");
        if line.starts_with("data: ") && line.contains("\"entries\":[{") {
            break line;
        }
    };
    assert!(board.contains(r#""original":true"#), "{board}");
    assert!(
        board.contains(r#"{"name":"alice","status":"from the web","set_at_ms":null}"#),
        "{board}"
    );
    let json = web.get("/board.json");
    assert!(
        json.body
            .trim_end()
            .ends_with(r#"{"entries":[{"name":"alice","status":"from the web"}]}"#),
        "{}",
        json.body
    );
}

/// The original stores any text: a window title (OSC 0), a clipboard write
/// (OSC 52), a screen clear, C1 CSI and NEL, BEL, a bare CR and DEL. Our
/// client shows them as escapes, and its JSON carries them exactly.
fn a_hostile_status_stored_by_the_original_reaches_no_terminal_raw(reference: &Reference) {
    const HOSTILE: &str =
        "\u{1b}]0;owned\u{7} \u{1b}]52;c;aGk=\u{7} \u{1b}[2J \u{9b}2J \u{85} \u{7} a\rb \u{7f}";
    const SHOWN: &str =
        "\\x1b]0;owned\\x07 \\x1b]52;c;aGk=\\x07 \\x1b[2J \\u{9b}2J \\u{85} \\x07 a\\rb \\x7f";
    let python = PythonServer::start(reference);
    let stored = common::request(&python.endpoint, format!("mallory: {HOSTILE}").as_bytes());
    assert_eq!(
        stored,
        format!("- mallory: {HOSTILE}\n").as_bytes(),
        "stored as sent"
    );
    for args in [
        vec!["ci", "--set", "here"],
        vec!["_", "--count", "1", "--interval", "0.05"],
        vec!["_", "--count", "1", "--json"],
    ] {
        let mut command = common::client(&args);
        command.args(["--endpoint", &python.endpoint]);
        let output = run_with_input(&mut command, "", CLIENT_TIMEOUT);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        assert_nothing_raw(&format!("{args:?}: stdout"), &output.stdout, &[]);
        assert_nothing_raw(&format!("{args:?}: stderr"), &output.stderr, &[]);
        let shown = String::from_utf8(output.stdout).expect("UTF-8");
        match args.contains(&"--json") {
            true => {
                let doc: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
                assert_eq!(
                    doc["entries"][0],
                    json!({"name": "mallory", "status": HOSTILE})
                );
            }
            false => assert!(shown.contains(&format!("- mallory: {SHOWN}\n")), "{shown}"),
        }
    }
}
