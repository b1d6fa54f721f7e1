//! A hostile (foreign, or man-in-the-middle) server: what it sends must not
//! drive the terminal, in any mode; JSON carries it exactly.

use crate::common::{
    self, EXIT_TIMEOUT, TERMS, assert_leaves_cleanly, assert_nothing_raw, client,
    run_client as run, terminal_bytes,
};

/// Every kind of control a terminal obeys: OSC 0 (the window title), OSC 52
/// (a clipboard write), CSI 2J (clear the screen), an SGR colour, the C1
/// controls CSI (U+009B) and NEL (U+0085), BEL, a bare CR, DEL and NUL.
const HOSTILE_TEXT: &str = "\u{1b}]0;owned\u{7} \u{1b}]52;c;aGk=\u{7} \u{1b}[2J \u{9b}2J \
                            \u{85} \u{1b}[31mred bell\u{7} over\rwrite del\u{7f} nul\0 end";
/// [`HOSTILE_TEXT`] as it must be shown: each control as an escape.
const SHOWN_TEXT: &str = "\\x1b]0;owned\\x07 \\x1b]52;c;aGk=\\x07 \\x1b[2J \\u{9b}2J \
                          \\u{85} \\x1b[31mred bell\\x07 over\\rwrite del\\x7f nul\\x00 end";
/// A name that sets the window title.
const HOSTILE_NAME: &str = "ev\u{1b}]0;name\u{7}il";
const SHOWN_NAME: &str = "ev\\x1b]0;name\\x07il";

/// How a [`HostileServer`] answers.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// A plain board carrying [`HOSTILE_NAME`] and [`HOSTILE_TEXT`], to every request.
    Board,
    /// As `Board`, but a snapshot (ages, a publisher whose endpoint carries
    /// an escape too) to `_:@` requests, as our server answers them.
    Snapshot,
    /// `error: ` and [`HOSTILE_TEXT`], to every request.
    Refusal,
    /// A board with bytes that are not UTF-8.
    NotUtf8,
}

impl Answer {
    fn to(self, request: &[u8]) -> Vec<u8> {
        let board = format!("- {HOSTILE_NAME}: {HOSTILE_TEXT}\n- bob: fine\n");
        match self {
            Answer::Snapshot if request.starts_with(b"_:@") => {
                let now = common::now_ms();
                format!(
                    "status-board 1\nepoch e1\nseq 1\nnow {now}\n\
                     publish tcp://127.0.0.1:1\u{1b}]0;pub\u{7}\n\n\
                     {now} {HOSTILE_NAME}: {HOSTILE_TEXT}\n{now} bob: fine\n"
                )
                .into_bytes()
            }
            Answer::Board | Answer::Snapshot => board.into_bytes(),
            Answer::Refusal => format!("error: {HOSTILE_TEXT}").into_bytes(),
            Answer::NotUtf8 => b"- bob: caf\xe9 \xff\n".to_vec(),
        }
    }
}

/// A foreign or man-in-the-middle server: a REP socket on 127.0.0.1:* that
/// answers every request as its [`Answer`] says, on a thread; stopped on drop.
struct HostileServer {
    endpoint: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostileServer {
    fn start(answer: Answer) -> HostileServer {
        use std::sync::atomic::Ordering;
        let context = zmq::Context::new();
        let socket = context.socket(zmq::REP).expect("REP socket");
        socket.set_linger(0).expect("LINGER");
        // Short, so that the thread sees the stop flag soon after a drop.
        socket.set_rcvtimeo(50).expect("RCVTIMEO");
        socket.bind("tcp://127.0.0.1:*").expect("bind");
        let endpoint = socket
            .get_last_endpoint()
            .expect("endpoint")
            .expect("UTF-8 endpoint");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match socket.recv_bytes(0) {
                    Ok(request) => socket.send(answer.to(&request), 0).expect("send"),
                    Err(zmq::Error::EAGAIN) => {}
                    Err(e) => panic!("hostile server: {e}"),
                }
            }
        });
        HostileServer {
            endpoint,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The sequences the terminal watcher writes itself: cursor home, clear to
/// the end of the line and of the screen, and its SGR styles (reset, bold,
/// dim, bold red, bold green).
const OWN_ESCAPES: [&str; 8] = [
    "\u{1b}[H",
    "\u{1b}[K",
    "\u{1b}[J",
    "\u{1b}[0m",
    "\u{1b}[1m",
    "\u{1b}[2m",
    "\u{1b}[1;31m",
    "\u{1b}[1;32m",
];

/// Runs the client to its end: exit code, stdout and stderr as bytes.
fn run_raw(args: &[&str], stdin: &str) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    let output = common::run_with_input(&mut client(args), stdin, EXIT_TIMEOUT);
    (output.status.code(), output.stdout, output.stderr)
}

#[test]
fn a_hostile_board_reaches_the_terminal_escaped_in_one_shot_piped_and_watch_modes() {
    for answer in [Answer::Board, Answer::Snapshot] {
        let server = HostileServer::start(answer);
        let endpoint = server.endpoint.as_str();
        let runs: [(&str, Vec<&str>, &str); 3] = [
            ("one-shot", vec!["ci", "--set", "x"], ""),
            ("piped", vec!["ci"], "first\nsecond\n"),
            ("watch", vec!["_", "--count", "1", "--interval", "0.05"], ""),
        ];
        for (mode, mut args, stdin) in runs {
            args.extend(["--endpoint", endpoint]);
            let what = format!("{answer:?}, {mode}");
            let (code, stdout, stderr) = run_raw(&args, stdin);
            let said = String::from_utf8_lossy(&stderr);
            assert_eq!(code, Some(0), "{what}: {said}");
            assert_nothing_raw(&format!("{what}: stdout"), &stdout, &[]);
            assert_nothing_raw(&format!("{what}: stderr"), &stderr, &[]);
            let shown = String::from_utf8(stdout).expect("UTF-8");
            assert!(
                shown.contains(&format!("- {SHOWN_NAME}: {SHOWN_TEXT}\n- bob: fine\n")),
                "{what}: {shown}"
            );
        }
    }
}

#[test]
fn a_publisher_endpoint_from_a_snapshot_is_said_escaped() {
    let server = HostileServer::start(Answer::Snapshot);
    let (code, _, stderr) = run_raw(&["_", "--endpoint", &server.endpoint, "--count", "1"], "");
    let said = String::from_utf8(stderr).expect("UTF-8");
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("cannot subscribe to tcp://127.0.0.1:1\\x1b]0;pub\\x07"),
        "{said}"
    );
}

#[test]
fn a_hostile_error_reply_is_said_escaped_in_every_mode() {
    let server = HostileServer::start(Answer::Refusal);
    let endpoint = server.endpoint.as_str();
    let runs: [(&str, Vec<&str>, &str, i32, String); 4] = [
        (
            "one-shot",
            vec!["ci", "--set", "x"],
            "",
            1,
            format!("status_client: the server refused \"ci: x\": {SHOWN_TEXT}\n"),
        ),
        (
            "one-shot --json",
            vec!["ci", "--set", "x", "--json"],
            "",
            1,
            format!("status_client: the server refused \"ci: x\": {SHOWN_TEXT}\n"),
        ),
        (
            "piped",
            vec!["ci"],
            "first\n",
            1,
            format!("status_client: line 1 refused: {SHOWN_TEXT}\n"),
        ),
        (
            "watch",
            vec!["_", "--count", "1", "--interval", "0.05"],
            "",
            0,
            format!("the server refused a snapshot ({SHOWN_TEXT}); polling instead\n"),
        ),
    ];
    for (mode, mut args, stdin, exit, says) in runs {
        args.extend(["--endpoint", endpoint]);
        let (code, stdout, stderr) = run_raw(&args, stdin);
        let said = String::from_utf8_lossy(&stderr);
        assert_eq!(code, Some(exit), "{mode}: {said}");
        assert_nothing_raw(&format!("{mode}: stdout"), &stdout, &[]);
        assert_nothing_raw(&format!("{mode}: stderr"), &stderr, &[]);
        assert!(said.contains(&says), "{mode}: {said}");
    }
}

#[test]
fn json_carries_a_hostile_board_exactly_with_nothing_raw() {
    for answer in [Answer::Board, Answer::Snapshot] {
        let server = HostileServer::start(answer);
        for args in [
            vec!["ci", "--set", "x", "--json"],
            vec!["_", "--count", "1", "--json"],
        ] {
            let mut args = args.clone();
            args.extend(["--endpoint", &server.endpoint]);
            let what = format!("{answer:?}, {args:?}");
            let (code, stdout, stderr) = run_raw(&args, "");
            assert_eq!(
                code,
                Some(0),
                "{what}: {}",
                String::from_utf8_lossy(&stderr)
            );
            assert_nothing_raw(&what, &stdout, &[]);
            let doc: serde_json::Value = serde_json::from_slice(&stdout).expect("JSON");
            assert_eq!(doc["entries"][0]["name"], HOSTILE_NAME, "{what}");
            assert_eq!(doc["entries"][0]["status"], HOSTILE_TEXT, "{what}");
            assert_eq!(doc["entries"][1]["status"], "fine", "{what}");
        }
    }
}

#[test]
fn a_terminal_watcher_writes_no_escape_but_its_own() {
    let server = HostileServer::start(Answer::Snapshot);
    for term in TERMS {
        let command = client(&["_", "--endpoint", &server.endpoint, "--count", "1"]);
        let mut session = common::on_a_terminal(command, term);
        let bytes = terminal_bytes(&session.exp_eof().expect("the watcher ends"));
        let what = format!("TERM={term}");
        assert_nothing_raw(&what, &bytes, &OWN_ESCAPES);
        let shown = String::from_utf8(bytes).expect("UTF-8");
        assert!(shown.contains(SHOWN_NAME), "{what}: {shown}");
        if term == "dumb" {
            // Scrolled as the original prints it: the whole status.
            assert!(shown.contains(SHOWN_TEXT), "{what}: {shown}");
        } else {
            // Redrawn in place, the status cut to the screen: its start.
            assert!(
                shown.contains("\\x1b]0;owned\\x07 \\x1b]52;c;aGk="),
                "{what}: {shown}"
            );
            assert!(
                shown.contains("\u{1b}[H"),
                "{what}: the screen view: {shown}"
            );
        }
    }
}

#[test]
fn an_interactive_client_shows_a_hostile_board_escaped() {
    let server = HostileServer::start(Answer::Board);
    for term in TERMS {
        let command = client(&["ci", "--endpoint", &server.endpoint]);
        let mut session = common::on_a_terminal(command, term);
        session.exp_string("ci: ").expect("prompt");
        session.send_line("hello").expect("type");
        let board = session.exp_string("- bob: fine").expect("the board");
        session.exp_string("ci: ").expect("prompt again");
        session.send_control('d').expect("Ctrl-D");
        let bytes = terminal_bytes(&board);
        // The line editor draws the prompt and echo with sequences of its
        // own; the board, from its first line on, holds none.
        let shown = String::from_utf8(bytes).expect("UTF-8");
        let block = shown.find("----------------- 0").expect("the block");
        let shown = &shown[block..];
        assert!(
            shown.contains(&format!("- {SHOWN_NAME}: {SHOWN_TEXT}\r\n")),
            "TERM={term}: {shown:?}"
        );
        assert_nothing_raw(&format!("TERM={term}"), shown.as_bytes(), &[]);
        assert_leaves_cleanly(session, term);
    }
}

#[test]
fn an_endpoint_from_the_environment_is_shown_escaped() {
    let mut command = client(&["_", "--count", "1"]);
    command.env(
        "STATUS_BOARD_ENDPOINT",
        "tcp://127.0.0.1:9\u{1b}]0;env\u{7}",
    );
    let output = common::run_with_input(&mut command, "", EXIT_TIMEOUT);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_nothing_raw("stdout", &output.stdout, &[]);
    assert_nothing_raw("stderr", &output.stderr, &[]);
    let shown = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        shown,
        "Connecting to 'tcp://127.0.0.1:9\\x1b]0;env\\x07'.\n"
    );
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("cannot connect to tcp://127.0.0.1:9\\x1b]0;env\\x07"),
        "{said}"
    );
}

#[test]
fn a_reply_that_is_not_utf8_shows_replacement_characters() {
    let server = HostileServer::start(Answer::NotUtf8);
    let (code, stdout, stderr) = run(&["ci", "--endpoint", &server.endpoint, "--set", "x"], "");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "- bob: caf\u{fffd} \u{fffd}\n");
    let (code, stdout, stderr) = run(
        &[
            "_",
            "--endpoint",
            &server.endpoint,
            "--count",
            "1",
            "--json",
        ],
        "",
    );
    assert_eq!(code, Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(doc["entries"][0]["status"], "caf\u{fffd} \u{fffd}");
}
