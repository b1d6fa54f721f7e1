//! Memory and descriptors: messages far over the limit cost no memory, and
//! more clients than descriptors are served or turned away, and said so.

use std::time::Duration;

use crate::common::{self, Server, peak_rss_kib, request_parts_within};

#[test]
fn a_16_mib_request_is_dropped_unread_and_the_server_carries_on() {
    let server = Server::start(&[]);
    server.request_text("a: 1");
    let before = peak_rss_kib(&server.child);
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
    // A figure that cannot be read fails the test (peak_rss_kib says why):
    // skipped, this check would prove nothing.
    let after = peak_rss_kib(&server.child);
    assert!(
        after < before + 8 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB: the message was buffered"
    );
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
    let before = peak_rss_kib(&server.child);
    let context = zmq::Context::new();
    // What a peer may write to a PUB socket: a message of 64 MiB, from an XSUB
    // (a SUB would first keep a subscription that long in a trie of its own).
    let hostile = context.socket(zmq::XSUB).expect("XSUB");
    hostile.set_linger(0).expect("LINGER");
    let monitor = common::monitor(&context, &hostile, zmq::SocketEvent::DISCONNECTED as i32);
    hostile.connect(&publisher).expect("connect");
    hostile.send(vec![2u8; 64 << 20], 0).expect("send 64 MiB");
    let dropped = common::monitor_event(&monitor, Duration::from_secs(30));
    assert_eq!(
        dropped,
        zmq::SocketEvent::DISCONNECTED,
        "the publisher drops the connection"
    );
    let after = peak_rss_kib(&server.child);
    assert!(
        after < before + 8 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB: the frame was buffered"
    );
    // Still publishing to everyone else.
    let watcher = common::subscriber(&context, &publisher, None);
    common::heartbeat(&watcher);
}
