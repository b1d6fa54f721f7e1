//! The real `status_client` against the real `status_server`, in every mode.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{EXIT_TIMEOUT, Server, client, run_client as run, wait_timeout};

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
            "0.05",
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
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fractional interval honoured"
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
fn an_empty_line_at_the_prompt_shows_the_board_and_posts_nothing() {
    for term in TERMS {
        let server = Server::start(&[]);
        server.request_text("bob: in a meeting");
        let mut session = on_a_terminal("bob", &server, term);
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
fn localhost_works_for_both_programs() {
    let port = common::free_port();
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

/// A TCP port where a peer accepts connections and then behaves as `peer`
/// says; the endpoint.
fn tcp_peer(peer: fn(std::net::TcpStream)) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || peer(stream));
        }
    });
    format!("tcp://127.0.0.1:{port}")
}

#[test]
fn a_silent_server_is_reported_within_timeout_times_retries() {
    // Accepts, then says nothing: no handshake, no reply.
    let endpoint = tcp_peer(|stream| {
        let mut stream = stream;
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    });
    let started = Instant::now();
    let (code, _, stderr) = run(
        &[
            "bob",
            "--endpoint",
            &endpoint,
            "--set",
            "x",
            "--timeout",
            "300",
            "--retries",
            "3",
        ],
        "",
    );
    let took = started.elapsed();
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("no reply from {endpoint} after 3 tries of 300 ms"))
            && stderr.contains("is status_server running"),
        "{stderr}"
    );
    assert!(took >= Duration::from_millis(900), "it did wait: {took:?}");
    assert!(
        took < Duration::from_millis(900 + 3000),
        "and no longer: {took:?}"
    );
    let (_, _, stderr) = run(
        &[
            "bob",
            "--endpoint",
            &endpoint,
            "--set",
            "x",
            "--timeout",
            "100",
            "--retries",
            "1",
        ],
        "",
    );
    assert!(stderr.contains("after 1 try of 100 ms"), "{stderr}");
}

#[test]
fn nothing_listening_and_a_peer_that_is_not_zeromq_are_said_at_once() {
    let not_zeromq = tcp_peer(|stream| {
        use std::io::{Read, Write};
        let mut stream = stream;
        let mut greeting = [0; 64];
        let _ = stream.read(&mut greeting);
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    // Port 9 (discard) on loopback: nothing listens there.
    for (endpoint, says) in [
        (
            "tcp://127.0.0.1:9",
            "nothing listens at tcp://127.0.0.1:9 (connection refused)",
        ),
        (not_zeromq.as_str(), "does not speak ZeroMQ"),
    ] {
        let started = Instant::now();
        let (code, _, stderr) = run(
            &[
                "bob",
                "--endpoint",
                endpoint,
                "--set",
                "x",
                "--timeout",
                "30000",
            ],
            "",
        );
        assert_eq!(code, Some(3), "{endpoint}: {stderr}");
        assert!(stderr.contains(says), "{endpoint}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{endpoint}: at once, not after the timeout"
        );
    }
}

#[test]
fn an_invalid_endpoint_is_a_usage_error() {
    let (code, _, stderr) = run(&["bob", "--endpoint", "nonsense", "--set", "x"], "");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot connect to nonsense"), "{stderr}");
}

#[test]
fn a_watcher_survives_a_server_restart() {
    let first = Server::start_raw(&["0", "--quiet", "--in-memory"]);
    let port = first.port().to_string();
    first.request_text("a: before");
    let (mut watcher, stdout, stderr) = common::spawn_piped(&mut client(&[
        "_",
        &port,
        "--interval",
        "0.05",
        "--timeout",
        "200",
        "--retries",
        "2",
    ]));
    stdout.until("- a: before");

    drop(first);
    let complaint = stderr.next("the watcher noticing the server is gone");
    assert!(
        complaint.contains("nothing listens") && complaint.contains("still trying"),
        "{complaint}"
    );

    let second = Server::start_raw(&[&port, "--quiet", "--in-memory"]);
    second.request_text("a: after");
    stdout.until("- a: after");
    let back = stderr.next("the watcher saying the server is back");
    assert!(back.contains("answers again"), "{back}");

    common::send_signal(&watcher, libc::SIGINT);
    let status = wait_timeout(&mut watcher, EXIT_TIMEOUT).expect("watcher exits on Ctrl-C");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn ctrl_c_interrupts_a_piped_client_waiting_on_stdin() {
    use std::io::Write;
    let server = Server::start(&[]);
    let (mut piped, stdout, _stderr) =
        common::spawn_piped(client(&["bob", "--endpoint", &server.endpoint]).stdin(Stdio::piped()));
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

/// Both ways rustyline reads: raw mode (`xterm`) and plain cooked reads (`dumb`).
const TERMS: [&str; 2] = ["xterm", "dumb"];

/// The client as a person runs it: on a pseudo-terminal of the given kind.
fn on_a_terminal(name: &str, server: &Server, term: &str) -> rexpect::session::PtySession {
    common::on_a_terminal(client(&[name, "--endpoint", &server.endpoint]), term)
}

/// Waits for the end of the session and checks it ended cleanly with exit 0.
fn assert_leaves_cleanly(mut session: rexpect::session::PtySession, term: &str) {
    let rest = session.exp_eof().expect("exits");
    assert!(
        !rest.contains("panicked") && !rest.contains("backtrace"),
        "TERM={term}: {rest}"
    );
    match session.process().wait().expect("status") {
        rexpect::process::WaitStatus::Exited(_, code) => assert_eq!(code, 0, "TERM={term}"),
        other => panic!("TERM={term}: unexpected {other:?}"),
    }
}

#[test]
fn interactive_prompts_shows_the_board_and_leaves_on_ctrl_d() {
    for term in TERMS {
        let server = Server::start(&[]);
        server.request_text("Jackson: I'm BAD");
        let mut session = on_a_terminal("Madonna", &server, term);
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
        let mut session = on_a_terminal("alice", &server, term);
        session.exp_string("alice: ").expect("prompt");
        session.send_control('c').expect("Ctrl-C");
        assert_leaves_cleanly(session, term);
    }
}

#[test]
fn a_pipe_waits_out_a_server_restart_and_delivers_the_line() {
    use std::io::Write;
    let port = common::free_port().to_string();
    let first = Server::start_raw(&[&port, "--quiet", "--in-memory"]);
    let (mut piped, stdout, stderr) =
        common::spawn_piped(client(&["ci", &port, "--timeout", "200"]).stdin(Stdio::piped()));
    let mut stdin = piped.stdin.take().expect("piped stdin");
    stdin.write_all(b"one\n").expect("write");
    stdout.until("- ci: one");
    drop(first);
    stdin.write_all(b"two\n").expect("write");
    let said = stderr.find("still trying");
    assert!(said.contains("nothing listens"), "{said}");
    let second = Server::start_raw(&[&port, "--quiet", "--in-memory"]);
    stdout.until("- ci: two");
    stderr.find("answers again");
    drop(stdin);
    let status = wait_timeout(&mut piped, EXIT_TIMEOUT).expect("exits at the end of input");
    assert_eq!(status.code(), Some(0));
    assert_eq!(second.request_text("_:"), "- ci: two\n");
}

#[test]
fn a_pipe_with_retries_given_gives_up_after_them() {
    let (code, _, stderr) = run(
        &[
            "ci",
            "--endpoint",
            "tcp://127.0.0.1:9",
            "--timeout",
            "100",
            "--retries",
            "2",
        ],
        "one\n",
    );
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("nothing listens"), "{stderr}");
    assert!(!stderr.contains("still trying"), "{stderr}");
}

#[test]
fn an_interactive_client_keeps_a_status_through_a_restart_and_sends_it() {
    for term in TERMS {
        let port = common::free_port().to_string();
        let first = Server::start_raw(&[&port, "--quiet", "--in-memory"]);
        let mut command = client(&["bob", &port, "--timeout", "200", "--retries", "1"]);
        command.env("TERM", term);
        let mut session = common::on_a_terminal(command, term);
        session.exp_string("bob: ").expect("prompt");
        session.send_line("first").expect("type");
        session.exp_string("- bob: first").expect("the board");
        drop(first);
        session
            .send_line("second")
            .expect("type while the server is away");
        session
            .exp_string("kept and sent when the server is back")
            .expect("told it is kept");
        let second = Server::start_raw(&[&port, "--quiet", "--in-memory"]);
        session
            .exp_string("the server is back: sent")
            .expect("sent once the server is back");
        session
            .exp_string("- bob: second")
            .expect("the board with it");
        assert_eq!(second.request_text("_:"), "- bob: second\n", "TERM={term}");
        session.send_control('d').expect("Ctrl-D");
        assert_leaves_cleanly(session, term);
    }
}

// ---- a hostile server: what it sends must not drive the terminal ----

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

/// Panics unless `bytes`, which the client wrote, are UTF-8 with no control
/// character but newlines, a CR only before a newline (a terminal's CRLF),
/// and an ESC only where it starts one of `own`: no BEL, DEL, NUL, no C1
/// control, no sequence a server chose.
fn assert_nothing_raw(what: &str, bytes: &[u8], own: &[&str]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"));
    for (at, c) in text.char_indices() {
        let rest = &text[at..];
        let allowed = match c {
            '\n' => true,
            '\r' => rest[1..].starts_with('\n'),
            '\u{1b}' => own.iter().any(|sequence| rest.starts_with(sequence)),
            c => !c.is_control(),
        };
        assert!(
            allowed,
            "{what}: {c:?} at byte {at}, in {:?}",
            &text[at.saturating_sub(20)..]
        );
    }
}

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

/// What rexpect read from a terminal, as the bytes the program wrote
/// (rexpect hands each byte over as one `char`).
fn terminal_bytes(read: &str) -> Vec<u8> {
    read.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("one byte per char"))
        .collect()
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

// ---- feeds that never die, and no silent surprises ----

/// Runs the client to its end with `stdin` as raw bytes: exit code, stdout, stderr.
fn run_bytes(args: &[&str], stdin: &[u8]) -> (Option<i32>, String, String) {
    use std::io::Write;
    let mut child = client(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the client");
    let mut input = child.stdin.take().expect("piped stdin");
    let bytes = stdin.to_vec();
    std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let out = common::Lines::from(child.stdout.take().expect("stdout"));
    let err = common::Lines::from(child.stderr.take().expect("stderr"));
    let status = wait_timeout(&mut child, EXIT_TIMEOUT).expect("the client finishes");
    let join = |lines: Vec<String>| lines.iter().map(|l| format!("{l}\n")).collect();
    (status.code(), join(out.rest()), join(err.rest()))
}

#[test]
fn a_piped_line_that_is_not_utf8_is_refused_by_number_and_the_feed_goes_on() {
    let server = Server::start(&[]);
    let input = b"ok\ncaf\xe9\nlast\n";
    let (code, stdout, stderr) = run_bytes(&["alice", "--endpoint", &server.endpoint], input);
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
    let (code, stdout, stderr) = run_bytes(
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

#[test]
fn a_host_that_does_not_resolve_is_said_by_both_programs() {
    for args in [
        vec![
            "bob",
            "--endpoint",
            "tcp://nonexistent.invalid:2345",
            "--set",
            "x",
        ],
        vec!["bob", "2345", "nonexistent.invalid", "--set", "x"],
        vec![
            "_",
            "--endpoint",
            "tcp://127.0.0.2;nonexistent.invalid:2345",
        ],
    ] {
        let started = Instant::now();
        let (code, _, stderr) = run(&args, "");
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("the host name 'nonexistent.invalid' does not resolve"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("nothing listens"), "{stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{args:?}: at once"
        );
    }
    let mut command = client(&["bob", "--set", "x"]);
    command.env("STATUS_BOARD_ENDPOINT", "tcp://nonexistent.invalid:2345");
    let (code, _, stderr) = common::run_command(&mut command, "");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("does not resolve"), "{stderr}");

    let port = common::free_port().to_string();
    let bind = format!("tcp://nosuchhost.invalid:{port}");
    for args in [
        vec!["--in-memory", "--bind", bind.as_str()],
        vec!["--in-memory", port.as_str(), "nosuchhost.invalid"],
        vec![
            "--in-memory",
            "--bind",
            "tcp://127.0.0.1:*",
            "--publish",
            bind.as_str(),
        ],
    ] {
        let (code, _, stderr) = common::run_command(
            std::process::Command::new(env!("CARGO_BIN_EXE_status_server")).args(&args),
            "",
        );
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot bind {bind}"))
                && stderr.contains("the host name 'nosuchhost.invalid' does not resolve"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("No such device"), "{stderr}");
    }
}

#[test]
fn a_client_at_the_publisher_port_is_told_where_the_requests_go_at_once() {
    let server = Server::start(&["--publish", "tcp://127.0.0.1:*"]);
    let publisher = common::snapshot(&server.endpoint).header.publish[0].clone();
    for args in [
        vec!["bob", "--set", "x"],
        vec!["bob"],
        vec!["_", "--count", "1"],
    ] {
        let mut all = args.clone();
        // A long timeout: the answer must come from the handshake, not from silence.
        all.extend(["--endpoint", publisher.as_str(), "--timeout", "30000"]);
        let started = Instant::now();
        let (code, _, stderr) = run(&all, "piped line\n");
        let took = started.elapsed();
        assert_eq!(code, Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{publisher} is a status server's publisher"))
                && stderr.contains("the requests go to the server's main endpoint")
                && stderr.contains("Waiting for clients on"),
            "{args:?}: {stderr}"
        );
        assert!(took < Duration::from_secs(2), "{args:?}: took {took:?}");
    }
    assert_eq!(server.request_text("_:"), "", "nothing was posted");
}

#[test]
fn a_blank_line_at_the_prompt_shows_the_board_and_posts_nothing() {
    let server = Server::start(&[]);
    server.request_text("bob: in a meeting");
    let mut session = on_a_terminal("bob", &server, "xterm");
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

/// A child process killed on drop: a test that fails leaves nothing running.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    let mut session = on_a_terminal("bob", &server, "xterm");
    session.exp_string("bob: ").expect("prompt");
    session.send_line("here").expect("type");
    session
        .exp_string("refreshed every 1s so that it does not expire; Ctrl-D to stop")
        .expect("said once, at the first post");
    let (pipe, _pipe_out, pipe_err) =
        common::spawn_piped(client(&["ci", "--endpoint", &server.endpoint]).stdin(Stdio::piped()));
    let mut pipe = Running(pipe);
    let mut stdin = pipe.0.stdin.take().expect("piped stdin");
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
    let status = wait_timeout(&mut pipe.0, EXIT_TIMEOUT).expect("the feed ends with its input");
    assert_eq!(status.code(), Some(0));
}
