//! What the server answers and what it refuses: the original's transcript,
//! every bad request, a full board, batches, peers without an envelope,
//! names that hide what they hold, pollers as fast as they can.

use crate::common::{
    Server, req_socket, request_parts, run_client, set_receive_timeout, start_server,
};

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
                let socket = req_socket(&context, &endpoint, None);
                set_receive_timeout(&socket, std::time::Duration::from_secs(5));
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

#[test]
fn a_refused_long_status_is_not_said_back_in_full() {
    let server = Server::start(&[]);
    let long = "z".repeat(5000);
    let (code, _, stderr) =
        run_client(&["bob", "--endpoint", &server.endpoint, "--set", &long], "");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("the limit is 4096") && stderr.contains('…'),
        "{stderr}"
    );
    assert!(stderr.len() < 400, "{} bytes said back", stderr.len());
}
