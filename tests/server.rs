//! The real `status_server`, spoken to over ZeroMQ: the serve loop in this
//! process where the loop is what is tested, the binary where its console,
//! signals, command line or memory are.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Server, request_parts, request_parts_within, start_server};

const BOARD_AFTER_TRANSCRIPT: &str = "- Jackson: I'm BAD\n- Madonna: I am a material girl\n";

#[test]
fn empty_board_is_an_empty_frame() {
    let server = start_server(|_| {});
    assert_eq!(server.request_text("_:"), "");
    server.stop();
}

#[test]
fn the_originals_transcript() {
    let server = Server::start(&[]);
    assert_eq!(
        server.request_text("Jackson: I'm BAD"),
        "- Jackson: I'm BAD\n"
    );
    assert_eq!(
        server.request_text("Madonna: I am a material girl"),
        BOARD_AFTER_TRANSCRIPT
    );
    assert_eq!(server.request_text("_:"), BOARD_AFTER_TRANSCRIPT);
    assert_eq!(server.request_text("_: anything"), BOARD_AFTER_TRANSCRIPT);
    assert_eq!(
        server.request_text("Jackson: better now"),
        "- Jackson: better now\n- Madonna: I am a material girl\n",
        "an update keeps its place"
    );
    assert_eq!(
        server.stdout.next("first received line"),
        "received name: 'Jackson' status: ': I'm BAD'"
    );
    assert_eq!(
        server.stdout.next("second received line"),
        "received name: 'Madonna' status: ': I am a material girl'"
    );
    assert_eq!(
        server.stdout.next("third received line"),
        "received name: 'Jackson' status: ': better now'",
        "polls print nothing"
    );
}

#[test]
fn the_originals_port_and_host_arguments_and_first_line() {
    let server = Server::start_raw(&["0", "127.0.0.1", "--in-memory"]);
    assert!(server.port() > 0);
    assert_eq!(server.request_text("a: b"), "- a: b\n");
}

#[test]
fn every_bad_request_gets_an_error_and_changes_nothing() {
    let server = Server::start(&["--max-name", "8", "--max-request", "100"]);
    server.request_text("Jackson: I'm BAD");
    let long_name = format!("{}: x", "n".repeat(9));
    let long_request = format!("bob: {}", "x".repeat(200));
    let cases: Vec<(&str, Vec<&[u8]>, &str)> = vec![
        ("not UTF-8", vec![b"bob: \xff\xfe"], "not valid UTF-8"),
        ("no colon", vec![b"bob is here"], "no ':'"),
        ("empty frame", vec![b""], "no ':'"),
        ("empty name", vec![b": hello"], "name is empty"),
        (
            "newline",
            vec![b"eve: ok\n- boss: eve is fired"],
            "control character",
        ),
        ("carriage return", vec![b"eve: a\rb"], "control character"),
        ("NUL", vec![b"eve: a\0b"], "control character"),
        ("escape", vec![b"eve: \x1b[2J"], "control character"),
        (
            "control in name",
            vec![b"e\tve: hi"],
            "name contains control",
        ),
        ("multipart", vec![b"bob: one", b"two"], "2 frames"),
        (
            "name too long",
            vec![long_name.as_bytes()],
            "name is 9 bytes, the limit is 8",
        ),
        (
            "too large",
            vec![long_request.as_bytes()],
            "the limit is 100",
        ),
    ];
    for (what, parts, says) in &cases {
        let reply =
            request_parts(&server.endpoint, parts).unwrap_or_else(|| panic!("{what}: no reply"));
        let text = String::from_utf8(reply).expect("error replies are UTF-8");
        assert!(text.starts_with("error: "), "{what}: {text:?}");
        assert!(text.contains(says), "{what}: {text:?} should say {says:?}");
        assert!(!text.contains('\n'), "{what}: one line, got {text:?}");
        assert_eq!(
            server.request_text("_:"),
            "- Jackson: I'm BAD\n",
            "{what}: board unchanged"
        );
    }
    assert_eq!(
        server.request_text("bob: fine"),
        "- Jackson: I'm BAD\n- bob: fine\n"
    );
    let (status, _, logged) = server.stop_with_output(libc::SIGINT);
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        logged
            .iter()
            .filter(|l| l.starts_with("rejected request: "))
            .count(),
        cases.len(),
        "every rejection is logged: {logged:?}"
    );
}

#[test]
fn a_full_board_refuses_new_names_and_takes_updates() {
    let server = start_server(|config| config.max_entries = 2);
    server.request_text("a: 1");
    server.request_text("b: 2");
    let reply = server.request_text("c: 3");
    assert!(
        reply.starts_with("error: full: board is full (2 names)"),
        "{reply:?}"
    );
    assert_eq!(server.request_text("a: 9"), "- a: 9\n- b: 2\n");
}

#[test]
fn a_16_mib_request_is_dropped_unread_and_the_server_carries_on() {
    let server = Server::start(&[]);
    server.request_text("a: 1");
    let before = common::peak_rss_kib(&server.child);
    let huge = vec![b'x'; 16 << 20];
    let reply = request_parts_within(&server.endpoint, &[&huge], Duration::from_secs(2));
    assert_eq!(
        reply, None,
        "libzmq drops the connection, there is no reply to send"
    );
    assert_eq!(
        server.request_text("_:"),
        "- a: 1\n",
        "still serving, unchanged"
    );
    if let (Some(before), Some(after)) = (before, common::peak_rss_kib(&server.child)) {
        assert!(
            after < before + 8 * 1024,
            "peak RSS grew from {before} KiB to {after} KiB: the message was buffered"
        );
    }
}

#[test]
fn slightly_too_large_gets_an_error_reply() {
    let server = start_server(|_| {});
    let request = format!("bob: {}", "x".repeat(5000));
    let reply = server.request_text(&request);
    assert!(
        reply.starts_with("error: too-long: request is 5005 bytes, the limit is 4096"),
        "{reply:?}"
    );
}

#[test]
fn quiet_leaves_out_received_lines() {
    let server = Server::start(&["--quiet"]);
    server.request_text("a: 1");
    server.request_text("_:");
    let (status, stdout, _) = server.stop_with_output(libc::SIGINT);
    assert_eq!(status.code(), Some(0));
    // Everything it printed, up to its exit: the Waiting line was read already.
    assert_eq!(stdout, Vec::<String>::new());
}

#[test]
fn sigint_and_sigterm_exit_zero_promptly() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let server = Server::start(&[]);
        server.request_text("a: 1");
        let (status, took) = server.stop(signal);
        assert_eq!(status.code(), Some(0), "signal {signal}");
        assert!(
            took < Duration::from_secs(3),
            "signal {signal} took {took:?}"
        );
    }
}

#[test]
fn an_address_in_use_is_one_line_and_exit_1() {
    let first = Server::start(&[]);
    let output = Command::new(env!("CARGO_BIN_EXE_status_server"))
        .args(["--in-memory", "--bind", &first.endpoint])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.contains("cannot bind") && stderr.contains("in use"),
        "{stderr:?}"
    );
}

#[test]
fn an_invalid_endpoint_is_one_line_and_exit_1() {
    for endpoint in ["nonsense", "tcp://no-such-interface:1", "foo://x"] {
        let output = Command::new(env!("CARGO_BIN_EXE_status_server"))
            .args(["--in-memory", "--bind", endpoint])
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(1), "{endpoint}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{endpoint}: {stderr:?}");
        assert!(
            stderr.contains(&format!("cannot bind {endpoint}")),
            "{stderr:?}"
        );
        assert!(!stderr.contains("panicked"), "{stderr:?}");
    }
}

#[test]
fn ipc_and_several_endpoints() {
    let path = std::env::temp_dir().join(format!("status-board-{}.sock", std::process::id()));
    let ipc = format!("ipc://{}", path.display());
    let server = Server::start(&["--bind", &ipc]);
    let second = server.stdout.next("second Waiting line");
    assert_eq!(second, format!("Waiting for clients on '{ipc}'."));
    server.request_text("a: over tcp");
    let reply = request_parts(&ipc, &[b"_:"]).expect("reply over ipc");
    assert_eq!(reply, b"- a: over tcp\n");
}

#[test]
fn concurrent_new_names_never_overfill_the_board() {
    // Requests that arrive together are committed together: the names staged in
    // one batch must count against --max-entries too.
    let server = start_server(|config| config.max_entries = 5);
    let barrier = std::sync::Barrier::new(20);
    let replies: Vec<(String, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|k| {
                let (endpoint, barrier) = (&server.endpoint, &barrier);
                scope.spawn(move || {
                    let request = format!("n{k}: here");
                    barrier.wait();
                    let reply = request_parts(endpoint, &[request.as_bytes()]).expect("reply");
                    (format!("n{k}"), String::from_utf8(reply).expect("UTF-8"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    let accepted: Vec<&String> = replies
        .iter()
        .filter(|(_, reply)| reply.starts_with("- "))
        .map(|(name, _)| name)
        .collect();
    let refused = replies
        .iter()
        .filter(|(_, r)| r.starts_with("error: full: board is full"))
        .count();
    assert_eq!((accepted.len(), refused), (5, 15), "{replies:?}");
    let board = server.request_text("_:");
    assert_eq!(board.lines().count(), 5, "{board}");
    for name in accepted {
        assert!(
            board.contains(&format!("- {name}: here\n")),
            "{name} in {board}"
        );
    }
}

#[test]
fn a_peer_without_a_req_envelope_is_dropped_and_one_with_it_answered() {
    let server = start_server(|_| {});
    let context = zmq::Context::new();
    let dealer = context.socket(zmq::DEALER).expect("DEALER");
    dealer.set_linger(0).expect("LINGER");
    dealer.set_rcvtimeo(500).expect("RCVTIMEO");
    dealer.connect(&server.endpoint).expect("connect");
    dealer.send("a: no envelope", 0).expect("send");
    assert!(
        dealer.recv_bytes(0).is_err(),
        "no reply without a delimiter, as from REP"
    );
    dealer.set_rcvtimeo(10_000).expect("RCVTIMEO");
    dealer
        .send_multipart([&b""[..], b"b: with envelope"], 0)
        .expect("send");
    let reply = dealer.recv_multipart(0).expect("a reply");
    assert_eq!(reply, vec![b"".to_vec(), b"- b: with envelope\n".to_vec()]);
    assert_eq!(server.request_text("_:"), "- b: with envelope\n");
}

/// `n` REQ clients polling `endpoint` at once (two contexts: libzmq allows
/// 1 023 sockets in one); how many got the board.
fn poll_with_clients(endpoint: &str, n: usize, within: Duration) -> usize {
    let contexts = [zmq::Context::new(), zmq::Context::new()];
    let sockets: Vec<zmq::Socket> = (0..n)
        .map(|i| {
            let socket = contexts[i % 2].socket(zmq::REQ).expect("REQ");
            socket.set_linger(0).expect("LINGER");
            socket.connect(endpoint).expect("connect");
            socket.send("_:", 0).expect("send");
            socket
        })
        .collect();
    let deadline = std::time::Instant::now() + within;
    let mut answered = vec![false; n];
    while answered.iter().any(|a| !a) && std::time::Instant::now() < deadline {
        let mut items: Vec<zmq::PollItem> = sockets
            .iter()
            .map(|s| s.as_poll_item(zmq::POLLIN))
            .collect();
        zmq::poll(&mut items, 1000).expect("poll");
        let ready: Vec<usize> = (0..n).filter(|&i| items[i].is_readable()).collect();
        drop(items);
        for i in ready {
            sockets[i].recv_bytes(0).expect("the board");
            answered[i] = true;
        }
    }
    answered.iter().filter(|a| **a).count()
}

#[test]
fn a_soft_open_file_limit_of_256_is_raised_and_1000_clients_are_served() {
    let server = common::server_with_open_files(256, None);
    let line = server.stderr.find("Clients: up to");
    assert!(line.contains("raised from 256"), "{line}");
    server.request_text("a: 1");
    assert_eq!(
        poll_with_clients(&server.endpoint, 1000, Duration::from_secs(60)),
        1000
    );
}

#[test]
fn clients_turned_away_for_want_of_descriptors_are_said_once() {
    // No room to raise: 128 descriptors, and 200 clients knocking.
    let server = common::server_with_open_files(128, Some(128));
    let line = server.stderr.find("Clients: up to");
    assert!(line.contains("raise the hard limit"), "{line}");
    let endpoint = server.endpoint.clone();
    // Knocking until the server is gone; not waited for.
    std::thread::spawn(move || poll_with_clients(&endpoint, 200, Duration::from_secs(20)));
    let warning = server.stderr.find("warning: turned away");
    assert!(
        warning.contains("are open, as many as the open-file limit (128) leaves room for"),
        "{warning}"
    );
}

#[test]
fn a_64_mib_frame_on_the_publisher_costs_no_memory() {
    let server = Server::start(&["--publish", "tcp://127.0.0.1:*", "--quiet"]);
    let publisher = common::snapshot(&server.endpoint).header.publish[0].clone();
    let before = common::peak_rss_kib(&server.child).expect("RSS");
    let context = zmq::Context::new();
    // What a peer may write to a PUB socket: a message of 64 MiB, from an XSUB
    // (a SUB would first keep a subscription that long in a trie of its own).
    let hostile = context.socket(zmq::XSUB).expect("XSUB");
    hostile.set_linger(0).expect("LINGER");
    hostile
        .monitor("inproc://hostile", zmq::SocketEvent::DISCONNECTED as i32)
        .expect("monitor");
    let monitor = context.socket(zmq::PAIR).expect("PAIR");
    monitor
        .connect("inproc://hostile")
        .expect("connect the monitor");
    monitor.set_rcvtimeo(30_000).expect("RCVTIMEO");
    hostile.connect(&publisher).expect("connect");
    hostile.send(vec![2u8; 64 << 20], 0).expect("send 64 MiB");
    monitor
        .recv_multipart(0)
        .expect("the publisher drops the connection");
    let after = common::peak_rss_kib(&server.child).expect("RSS");
    assert!(
        after < before + 8 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB: the frame was buffered"
    );
    // Still publishing to everyone else.
    let watcher = context.socket(zmq::SUB).expect("SUB");
    watcher.set_linger(0).expect("LINGER");
    watcher.set_subscribe(b"").expect("subscribe");
    watcher.set_rcvtimeo(10_000).expect("RCVTIMEO");
    watcher.connect(&publisher).expect("connect");
    let heartbeat = watcher.recv_bytes(0).expect("a heartbeat");
    assert!(heartbeat.starts_with(b"hb "), "{heartbeat:?}");
}

#[test]
fn every_program_says_who_it_is_and_generates_completions_and_a_man_page() {
    for (program, name) in [
        (env!("CARGO_BIN_EXE_status_server"), "status_server"),
        (env!("CARGO_BIN_EXE_status_client"), "status_client"),
        (env!("CARGO_BIN_EXE_status_web"), "status_web"),
    ] {
        let run = |args: &[&str]| {
            let output = Command::new(program).args(args).output().expect("run");
            assert!(output.status.success(), "{name} {args:?}: {output:?}");
            String::from_utf8(output.stdout).expect("UTF-8")
        };
        assert!(run(&["--version"]).starts_with(&format!("{name} ")));
        assert!(
            run(&["--help"]).contains("--generate <WHAT>"),
            "{name} --help shows --generate"
        );
        assert!(run(&["--generate", "bash"]).contains(&format!("_{name}()")));
        assert!(run(&["--generate", "zsh"]).contains(&format!("#compdef {name}")));
        assert!(run(&["--generate", "fish"]).contains(&format!("complete -c {name}")));
        let man = run(&["--generate", "man"]);
        assert!(man.contains(&format!(".TH {name} 1")), "{man}");
        // The mode of its own, in a synopsis form of its own.
        assert!(
            man.contains(&format!(
                ".SY {name}\n\\fB\\-\\-generate\\fR\\~\\fIWHAT\\fR\n.YS\n"
            )),
            "{man}"
        );
    }
}

/// A line of the man page's roff as it reads: the escapes `cli.rs` writes undone.
fn unroff(line: &str) -> String {
    line.trim_start_matches("\\&")
        .replace("\\-", "-")
        .replace("\\(aq", "'")
        .replace("\\(ga", "`")
        .replace("\\e", "\\")
}

#[test]
fn the_man_page_gives_flags_their_values_and_keeps_the_examples_line_for_line() {
    let run = |arg: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_status_server"))
            .arg(arg)
            .output()
            .expect("run");
        assert!(output.status.success(), "{arg}: {output:?}");
        String::from_utf8(output.stdout).expect("UTF-8")
    };
    let man = run("--generate=man");
    let synopsis = &man[man.find(".SH SYNOPSIS").expect("a synopsis")
        ..man.find(".SH DESCRIPTION").expect("a description")];
    for word in [
        "[\\fB\\-\\-state\\fR\\~\\fIPATH\\fR]",
        "[\\fB\\-\\-fsync\\fR\\~\\fIPOLICY\\fR]",
        "[\\fB\\-\\-bind\\fR\\~\\fIENDPOINT\\fR]...",
        "[\\fB\\-q\\fR|\\fB\\-\\-quiet\\fR]",
        "[\\fIPORT\\fR]",
        ".SY status_server\n\\fB\\-\\-hash\\-password\\fR\n.YS",
    ] {
        assert!(synopsis.contains(word), "{word} in {synopsis}");
    }
    // The examples of --help, each a line of an example block (no filling).
    let help = run("--help");
    let examples: Vec<&str> = help
        .lines()
        .skip_while(|line| *line != "Examples:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .collect();
    assert!(examples.len() >= 5, "{help}");
    let block: Vec<String> = man
        .lines()
        .skip_while(|line| *line != ".EX")
        .skip(1)
        .take_while(|line| *line != ".EE")
        .map(unroff)
        .collect();
    let examples: Vec<String> = examples.iter().map(|l| l.trim().to_owned()).collect();
    assert_eq!(block, examples);
    assert!(
        examples.iter().all(|line| line.len() <= 69),
        "each fits a man page 80 columns wide (7 indent and 2 more): {examples:#?}"
    );
}

/// Whether `line` starts with an RFC 3339 time and a space.
fn stamped(line: &str) -> bool {
    line.split_once(' ')
        .is_some_and(|(time, _)| humantime::parse_rfc3339(time).is_ok())
}

#[test]
fn the_log_says_settings_peers_times_expiries_clears_and_the_stop() {
    let server = Server::start(&["--log-time", "--ttl", "1s"]);
    let state = server.stderr.next("the state line");
    assert!(
        stamped(&state) && state.contains("State: in memory"),
        "{state}"
    );
    let settings = server.stderr.next("the settings line");
    assert!(
        stamped(&settings)
            && settings.contains("ttl 1s")
            && settings.ends_with("at most 100000 names."),
        "{settings}"
    );
    server.request_text("a: 1");
    let received = server.stdout.next("the received line");
    assert!(stamped(&received), "{received}");
    assert!(
        received.ends_with("received name: 'a' status: ': 1' from 127.0.0.1"),
        "{received}"
    );
    // A clear of a name that is not there changes nothing: no line for it.
    server.request_text("_:@clear nobody");
    server.request_text("b: 2");
    server.request_text("_:@clear b");
    let next = server.stdout.next("the next line");
    assert!(next.contains("received name: 'b'"), "{next}");
    let cleared = server.stdout.next("the clear");
    assert!(cleared.contains("cleared name: 'b'"), "{cleared}");
    let expired = server.stderr.find("expired name: 'a'");
    assert!(
        stamped(&expired) && expired.contains("not refreshed for"),
        "{expired}"
    );
    let (status, _, log) = server.stop_with_output(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
    let stopped = log.last().expect("a last line");
    assert!(
        stamped(stopped)
            && stopped.ends_with(
                "Stopped: 0 names on the board, gone with the server (--in-memory: nothing on disk)."
            ),
        "{log:?}"
    );
}

#[test]
fn a_refused_long_status_is_not_said_back_in_full() {
    let server = Server::start(&[]);
    let output = common::run_with_input(
        &mut common::client(&[
            "bob",
            "--endpoint",
            &server.endpoint,
            "--set",
            &"z".repeat(5000),
        ]),
        "",
        common::EXIT_TIMEOUT,
    );
    let stderr = String::from_utf8(output.stderr).expect("UTF-8");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("the limit is 4096") && stderr.contains('…'),
        "{stderr}"
    );
    assert!(stderr.len() < 400, "{} bytes said back", stderr.len());
}

#[test]
fn names_that_do_not_show_what_they_hold_are_refused_and_real_names_pass() {
    let server = Server::start(&["--quiet"]);
    server.request_text("alice: in a meeting");
    for (name, shown) in [
        ("\u{202e}ecila", "U+202E"),
        ("\u{200b}", "U+200B"),
        ("al\u{2060}ice", "U+2060"),
        ("\u{feff}alice", "U+FEFF"),
        ("\u{3164}", "U+3164"),
        ("alice ", "space"),
    ] {
        let reply = server.request_text(&format!("{name}: hello"));
        assert!(
            reply.starts_with("error: ") && reply.contains(shown),
            "{name:?}: {reply:?}"
        );
        // Clearing takes any name a board may hold; this one is not there.
        let clear = server.request_text(&format!("_:@clear {name}"));
        assert!(!clear.starts_with("error: "), "clear {name:?}: {clear:?}");
        assert_eq!(
            server.request_text("_:"),
            "- alice: in a meeting\n",
            "{name:?}: board unchanged"
        );
    }
    for name in ["王小明", "José", "Zoë"] {
        let reply = server.request_text(&format!("{name}: here"));
        assert!(reply.contains(&format!("- {name}: here\n")), "{reply:?}");
    }
}

#[test]
fn clients_polling_as_fast_as_they_can_never_lose_a_reply() {
    // Replies are queued only a few deep per peer, and libzmq learns that a
    // peer has read them from a command it takes in its own time: a busy
    // server could take a fast poller for a full one and drop its reply.
    let server = Server::start(&["--quiet"]);
    server.request_text("alice: here");
    let pollers: Vec<_> = (0..4)
        .map(|_| {
            let endpoint = server.endpoint.clone();
            std::thread::spawn(move || {
                let context = zmq::Context::new();
                let socket = context.socket(zmq::REQ).expect("REQ");
                socket.set_linger(0).expect("LINGER");
                socket.set_rcvtimeo(5_000).expect("RCVTIMEO");
                socket.connect(&endpoint).expect("connect");
                for i in 0..10_000 {
                    socket.send("_:", 0).expect("send");
                    let reply = socket
                        .recv_bytes(0)
                        .unwrap_or_else(|e| panic!("poll {i} got no reply: {e}"));
                    assert_eq!(reply, b"- alice: here\n");
                }
            })
        })
        .collect();
    for poller in pollers {
        poller.join().expect("every poll answered");
    }
}

/// How a terminal is left after a prompt, as `stty -a` lists it: a person's
/// terminal reads lines (`icanon`) and shows what is typed (`echo`).
const TERMINAL_AS_A_PERSON_HAS_IT: &str = "icanon echo";

/// `status_server --hash-password` on a pseudo-terminal set as a person's
/// (rexpect starts it without echo), run by `sh`, which then says the exit
/// code and how the terminal is left (a prompt killed in the middle leaves
/// `-icanon -echo`).
fn hash_password_on_a_terminal() -> rexpect::session::PtySession {
    let mut command = Command::new("sh");
    command.args([
        "-c",
        r#"stty icanon echo; "$0" --hash-password; echo "exit $?";
           stty -a | tr ' ' '\n' | grep -x -E -e '-?(icanon|echo)' | paste -s -d ' '"#,
        env!("CARGO_BIN_EXE_status_server"),
    ]);
    common::on_a_terminal(command, "xterm")
}

/// What is left of the session: what the program said after the last
/// input, its exit code, and the terminal's echo setting as `stty` says it.
fn said_exit_and_echo(session: &mut rexpect::session::PtySession) -> (String, String, String) {
    let said = session.exp_string("exit ").expect("the exit code");
    let rest = session.exp_eof().expect("the end");
    let mut lines = rest.lines().map(str::trim);
    let code = lines.next().expect("a code").to_owned();
    let echo = lines.next().expect("stty's flags").to_owned();
    (said.trim().to_owned(), code, echo)
}

#[test]
fn hash_password_on_a_terminal_asks_twice_without_echo() {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let mut session = hash_password_on_a_terminal();
    let mut shown = session.exp_string("Password: ").expect("first prompt");
    session.send_line("s3cret pass").expect("type");
    shown += &session
        .exp_string("Password again: ")
        .expect("second prompt");
    session.send_line("s3cret pass").expect("type again");
    shown += &session.exp_string("$argon2id$").expect("the hash");
    let hash = format!("$argon2id${}", session.exp_string("\r\n").expect("its end"));
    assert!(!shown.contains("s3cret"), "echoed: {shown:?}");
    let parsed = PasswordHash::new(&hash).expect("a PHC string");
    assert!(
        argon2::Argon2::default()
            .verify_password(b"s3cret pass", &parsed)
            .is_ok(),
        "the hash is of the password typed: {hash}"
    );
    let (_, code, echo) = said_exit_and_echo(&mut session);
    assert_eq!(
        (code.as_str(), echo.as_str()),
        ("0", TERMINAL_AS_A_PERSON_HAS_IT)
    );
}

#[test]
fn hash_password_on_a_terminal_refuses_two_passwords_that_differ() {
    let mut session = hash_password_on_a_terminal();
    session.exp_string("Password: ").expect("first prompt");
    session.send_line("s3cret").expect("type");
    session
        .exp_string("Password again: ")
        .expect("second prompt");
    session.send_line("s3crte").expect("a typo");
    let (said, code, echo) = said_exit_and_echo(&mut session);
    assert_eq!(
        said,
        "status_server: error: the two passwords differ; nothing was printed (run it again)"
    );
    assert_eq!(
        (code.as_str(), echo.as_str()),
        ("1", TERMINAL_AS_A_PERSON_HAS_IT)
    );
}

#[test]
fn ctrl_c_at_the_hash_password_prompt_says_interrupted_and_gives_the_echo_back() {
    for at_second in [false, true] {
        let mut session = hash_password_on_a_terminal();
        session.exp_string("Password: ").expect("first prompt");
        if at_second {
            session.send_line("s3cret").expect("type");
            session
                .exp_string("Password again: ")
                .expect("second prompt");
        }
        session.send("half").expect("type half");
        session.send_control('c').expect("Ctrl-C");
        let (said, code, echo) = said_exit_and_echo(&mut session);
        assert_eq!(said, "status_server: interrupted");
        assert_eq!(code, "130", "at the second prompt: {at_second}");
        assert_eq!(echo, TERMINAL_AS_A_PERSON_HAS_IT, "the terminal as it was");
    }
}

/// The commands of the README's console block that holds `needle`, without
/// their prompts (`$ `, and `> ` for a continued line).
fn readme_commands(needle: &str) -> Vec<String> {
    let readme = include_str!("../README.md");
    let block = readme
        .split("```console\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .find(|block| block.contains(needle))
        .unwrap_or_else(|| panic!("a README block with {needle}"));
    block
        .lines()
        .filter_map(|line| line.strip_prefix("$ ").or_else(|| line.strip_prefix("> ")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readmes_completion_and_man_page_commands_work_on_a_fresh_account() {
    let home = tempfile::tempdir().expect("temp dir");
    // Where `cargo install` puts the programs: the only thing there yet.
    let bin = home.path().join(".cargo/bin");
    std::fs::create_dir_all(&bin).expect("~/.cargo/bin");
    for program in [
        env!("CARGO_BIN_EXE_status_server"),
        env!("CARGO_BIN_EXE_status_client"),
        env!("CARGO_BIN_EXE_status_web"),
    ] {
        let name = Path::new(program).file_name().expect("a name");
        std::os::unix::fs::symlink(program, bin.join(name)).expect("link");
    }
    let commands = readme_commands("--generate man");
    // `man status_server` shows the page: an interactive pager, not run here.
    let script: Vec<&str> = commands
        .iter()
        .map(String::as_str)
        .filter(|command| !command.starts_with("man "))
        .collect();
    assert!(script[0].starts_with("mkdir -p "), "{script:?}");
    let output = common::run_with_input(
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script.join("\n")])
            .env("HOME", home.path())
            .env_remove("XDG_DATA_HOME")
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display())),
        "",
        common::EXIT_TIMEOUT,
    );
    assert!(output.status.success(), "{output:?}");
    for name in ["status_server", "status_client", "status_web"] {
        let read = |path: &str| {
            std::fs::read_to_string(home.path().join(path))
                .unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let completion = read(&format!(".local/share/bash-completion/completions/{name}"));
        assert!(completion.contains(&format!("_{name}()")), "{name}");
        // man finds pages in ../share/man beside each directory on PATH.
        let page = read(&format!(".cargo/share/man/man1/{name}.1"));
        assert!(page.contains(&format!(".TH {name} 1")), "{name}");
    }
}

#[test]
fn the_readme_installs_with_the_locked_versions() {
    let install = readme_commands("cargo install");
    assert_eq!(install, ["cargo install --locked --path ."]);
}
