//! Servers that are not there or not right: silent, gone, restarted, not
//! ZeroMQ, a host that does not resolve, a publisher where the requests go.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{
    self, EXIT_TIMEOUT, Running, Server, TERMS, assert_leaves_cleanly, client, free_port,
    run_client as run, run_server, wait_timeout,
};

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
fn a_watcher_survives_a_server_restart() {
    let first = Server::start_raw(&["0", "--quiet", "--in-memory"]);
    let port = first.port().to_string();
    first.request_text("a: before");
    let (watcher, stdout, stderr) = common::spawn_piped(&mut client(&[
        "_",
        &port,
        "--interval",
        "0.05",
        "--timeout",
        "200",
        "--retries",
        "2",
    ]));
    let mut watcher = Running(watcher);
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

    assert_eq!(common::stop_with(&mut watcher, libc::SIGINT), Some(0));
}

#[test]
fn a_pipe_waits_out_a_server_restart_and_delivers_the_line() {
    use std::io::Write;
    let port = free_port().to_string();
    let first = Server::start_raw(&[&port, "--quiet", "--in-memory"]);
    let (piped, stdout, stderr) =
        common::spawn_piped(client(&["ci", &port, "--timeout", "200"]).stdin(Stdio::piped()));
    let mut piped = Running(piped);
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
        let port = free_port().to_string();
        let first = Server::start_raw(&[&port, "--quiet", "--in-memory"]);
        let command = client(&["bob", &port, "--timeout", "200", "--retries", "1"]);
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

    let port = free_port().to_string();
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
        let (code, _, stderr) = run_server(&args);
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
