//! Several servers of one board (`--endpoint A --endpoint B`, or
//! `STATUS_BOARD_ENDPOINT=A,B`): a client that finds the one in use dead,
//! silent or without quorum goes on to the next, says so once, and a
//! refusal of any other kind is an answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::answering_with;
use crate::common::{
    self, EXIT_TIMEOUT, Server, Watcher, client, free_port, run_client as run, send_signal,
    wait_timeout,
};

/// Kills `server` with SIGKILL, as a machine that is lost, and waits for it to be gone.
fn kill_hard(mut server: Server) -> String {
    let endpoint = server.endpoint.clone();
    send_signal(&server.child, libc::SIGKILL);
    wait_timeout(&mut server.child, EXIT_TIMEOUT).expect("gone after SIGKILL");
    endpoint
}

/// A server that answers every request with `reply`; its endpoint, and
/// how many requests it has answered.
fn answering(reply: &'static str) -> (String, Arc<AtomicU32>) {
    let asked = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&asked);
    let endpoint = answering_with(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        reply.as_bytes().to_vec()
    });
    (endpoint, asked)
}

#[test]
fn a_one_shot_through_a_dead_first_endpoint_succeeds_via_the_second_and_says_so() {
    let second = Server::start(&[]);
    // Nothing listens at the first: refused.
    let nothing = format!("tcp://127.0.0.1:{}", free_port());
    // A server lost as a machine is: killed, its port closed.
    let killed = kill_hard(Server::start(&[]));
    for (first, text) in [(&nothing, "via the second"), (&killed, "after a kill")] {
        let started = Instant::now();
        let (code, stdout, stderr) = run(
            &[
                "bob",
                "--endpoint",
                first,
                "--endpoint",
                &second.endpoint,
                "--set",
                text,
            ],
            "",
        );
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stdout.contains(&format!("- bob: {text}")), "{stdout}");
        assert!(
            stderr.contains(&format!(
                "status_client: now using {} ({first}: connection refused)",
                second.endpoint
            )),
            "{stderr}"
        );
        // A refused connection is said at once: no timeout waited.
        assert!(started.elapsed() < Duration::from_secs(2), "{stderr}");
    }
    assert_eq!(
        second.request_text("_:"),
        "- bob: after a kill\n",
        "both reached the second"
    );
    // --quiet: nothing on stdout, the move still said on stderr.
    let (code, stdout, stderr) = run(
        &[
            "bob",
            "--endpoint",
            &nothing,
            "--endpoint",
            &second.endpoint,
            "--set",
            "q",
            "-q",
        ],
        "",
    );
    assert_eq!((code, stdout.as_str()), (Some(0), ""), "{stderr}");
    assert!(stderr.contains("now using"), "{stderr}");
    // The first answering: nothing said.
    let (code, _, stderr) = run(
        &[
            "bob",
            "--endpoint",
            &second.endpoint,
            "--endpoint",
            &nothing,
            "--set",
            "r",
        ],
        "",
    );
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
}

#[test]
fn a_silent_first_endpoint_costs_one_timeout_even_with_a_single_retry() {
    // Accepts, then says nothing: no handshake, no reply.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent = format!("tcp://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(8).collect();
        std::thread::sleep(Duration::from_secs(60));
        drop(held);
    });
    let second = Server::start(&[]);
    let started = Instant::now();
    let (code, stdout, stderr) = run(
        &[
            "bob",
            "--endpoint",
            &silent,
            "--endpoint",
            &second.endpoint,
            "--set",
            "x",
            "--timeout",
            "400",
            "--retries",
            "1",
        ],
        "",
    );
    let took = started.elapsed();
    assert_eq!(code, Some(0), "each endpoint gets a try: {stderr}");
    assert!(stdout.contains("- bob: x"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "now using {} ({silent}: no reply in 400 ms)",
            second.endpoint
        )),
        "{stderr}"
    );
    assert!(took >= Duration::from_millis(400), "it waited: {took:?}");
    assert!(took < Duration::from_secs(4), "once: {took:?}");
}

#[test]
fn every_endpoint_dead_is_said_with_all_of_them() {
    let (a, b) = (
        format!("tcp://127.0.0.1:{}", free_port()),
        format!("tcp://127.0.0.1:{}", free_port()),
    );
    let (code, _, stderr) = run(
        &["bob", "--endpoint", &a, "--endpoint", &b, "--set", "x"],
        "",
    );
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("nothing listens at {a}, {b}")),
        "{stderr}"
    );
}

#[test]
fn the_environment_may_list_several_endpoints() {
    let second = Server::start(&[]);
    let nothing = format!("tcp://127.0.0.1:{}", free_port());
    let mut command = client(&["bob", "--set", "from the list"]);
    command.env(
        "STATUS_BOARD_ENDPOINT",
        format!("{nothing}, {}", second.endpoint),
    );
    let (code, stdout, stderr) = common::run_command(&mut command, "");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("- bob: from the list"), "{stdout}");
    assert!(stderr.contains("now using"), "{stderr}");
}

#[test]
fn unavailable_goes_to_the_next_endpoint_once_and_other_refusals_are_answers() {
    let second = Server::start(&[]);
    let (no_quorum, asked) = answering("error: unavailable: no quorum since 12:00");
    let (code, stdout, stderr) = run(
        &[
            "bob",
            "--endpoint",
            &no_quorum,
            "--endpoint",
            &second.endpoint,
            "--set",
            "x",
        ],
        "",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("- bob: x"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "now using {} ({no_quorum}: unavailable: no quorum since 12:00)",
            second.endpoint
        )),
        "{stderr}"
    );
    assert_eq!(asked.load(Ordering::SeqCst), 1);

    // Any other refusal is the server's answer: not sent elsewhere.
    let (refusing, _) = answering("error: name is reserved");
    let (code, _, stderr) = run(
        &[
            "carol",
            "--endpoint",
            &refusing,
            "--endpoint",
            &second.endpoint,
            "--set",
            "y",
        ],
        "",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("name is reserved"), "{stderr}");
    assert_eq!(
        second.request_text("_:"),
        "- bob: x\n",
        "carol was not sent on"
    );

    // Both without quorum: each asked once, and the refusal said.
    let (other, asked_other) = answering("error: unavailable: no quorum");
    let before = asked.load(Ordering::SeqCst);
    let (code, _, stderr) = run(
        &[
            "dave",
            "--endpoint",
            &no_quorum,
            "--endpoint",
            &other,
            "--set",
            "z",
        ],
        "",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("unavailable: no quorum"), "{stderr}");
    assert_eq!(asked.load(Ordering::SeqCst) - before, 1);
    assert_eq!(asked_other.load(Ordering::SeqCst), 1);
}

#[test]
fn a_watcher_moves_to_the_next_server_when_the_one_it_watches_is_killed() {
    let first = Server::start(&["--publish", "tcp://127.0.0.1:*"]);
    let second = Server::start(&["--publish", "tcp://127.0.0.1:*"]);
    // The same board on both, as gateways of one cluster would serve.
    for server in [&first, &second] {
        assert!(server.request_text("alice: here").contains("alice"));
    }
    let watcher = Watcher::start(&first.endpoint, &["--endpoint", &second.endpoint]);
    let board = watcher.next("the first board");
    assert_eq!(board["entries"][0]["name"], "alice", "{board}");
    // Live: a change on the first comes pushed.
    first.request_text("carol: on the first");
    watcher.out.find_within("carol", Duration::from_secs(10));
    let first_endpoint = kill_hard(first);
    second.request_text("carol: on the first");
    second.request_text("bob: posted to the second");
    let moved = watcher.err.find_within(
        &format!("now using {} ({first_endpoint}:", second.endpoint),
        Duration::from_secs(30),
    );
    assert!(moved.contains("publisher went silent"), "{moved}");
    let line = watcher
        .out
        .find_within("posted to the second", Duration::from_secs(30));
    let board: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    let names: Vec<&str> = board["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ["alice", "carol", "bob"], "{board}");
    // And live on the second: its changes come pushed.
    second.request_text("erin: live again");
    watcher
        .out
        .find_within("live again", Duration::from_secs(10));
    watcher.stop();
}

#[test]
fn a_pipe_stays_with_the_server_that_answered() {
    let second = Server::start(&[]);
    let nothing = format!("tcp://127.0.0.1:{}", free_port());
    let (code, stdout, stderr) = run(
        &["ci", "--endpoint", &nothing, "--endpoint", &second.endpoint],
        "one\ntwo\nthree\n",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("- ci: three"), "{stdout}");
    assert_eq!(
        stderr.matches("now using").count(),
        1,
        "moved once, then stayed: {stderr}"
    );
    assert_eq!(second.request_text("_:"), "- ci: three\n");
}
