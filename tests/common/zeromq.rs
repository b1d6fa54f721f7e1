//! ZeroMQ as a test speaks it: requests on a fresh REQ socket with a bounded
//! wait, the server's snapshot, subscriptions to its publisher, and socket
//! monitors that say how a handshake went.

#![allow(dead_code, reason = "each test crate uses a few of these items")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::process::REPLY_TIMEOUT;

/// A REQ socket connected to `endpoint`, logged in as `(user, password)` if
/// given: LINGER 0, each receive bounded by [`REPLY_TIMEOUT`].
pub fn req_socket(
    context: &zmq::Context,
    endpoint: &str,
    login: Option<(&str, &str)>,
) -> zmq::Socket {
    let socket = context.socket(zmq::REQ).expect("REQ socket");
    if let Some((user, password)) = login {
        socket.set_plain_username(Some(user)).expect("user");
        socket.set_plain_password(Some(password)).expect("password");
    }
    socket.set_linger(0).expect("LINGER");
    set_receive_timeout(&socket, REPLY_TIMEOUT);
    socket.connect(endpoint).expect("connect");
    socket
}

/// Bounds each receive on `socket` by `timeout`.
pub fn set_receive_timeout(socket: &zmq::Socket, timeout: Duration) {
    socket
        .set_rcvtimeo(i32::try_from(timeout.as_millis()).expect("timeout fits"))
        .expect("RCVTIMEO");
}

/// Sends a (possibly multipart) request on a fresh REQ socket; `None` if no reply in time.
pub fn request_parts_within(endpoint: &str, parts: &[&[u8]], timeout: Duration) -> Option<Vec<u8>> {
    request_parts_as(None, endpoint, parts, timeout)
}

/// [`request_parts_within`], logged in as `(user, password)` if given.
pub fn request_parts_as(
    login: Option<(&str, &str)>,
    endpoint: &str,
    parts: &[&[u8]],
    timeout: Duration,
) -> Option<Vec<u8>> {
    let context = zmq::Context::new();
    let socket = req_socket(&context, endpoint, login);
    set_receive_timeout(&socket, timeout);
    socket
        .send_multipart(parts.iter().copied(), 0)
        .expect("send");
    match socket.recv_bytes(0) {
        Ok(reply) => {
            assert!(
                !socket.get_rcvmore().expect("RCVMORE"),
                "reply must be one frame"
            );
            Some(reply)
        }
        Err(zmq::Error::EAGAIN) => None,
        Err(e) => panic!("receive failed: {e}"),
    }
}

pub fn request_parts(endpoint: &str, parts: &[&[u8]]) -> Option<Vec<u8>> {
    request_parts_within(endpoint, parts, REPLY_TIMEOUT)
}

/// Sends one frame on a fresh REQ socket and returns the reply.
pub fn request(endpoint: &str, frame: &[u8]) -> Vec<u8> {
    request_parts(endpoint, &[frame]).expect("a reply from the server")
}

/// The reply as text.
pub fn request_text(endpoint: &str, frame: &str) -> String {
    String::from_utf8(request(endpoint, frame.as_bytes())).expect("UTF-8 reply")
}

/// The server's snapshot (`_:@board`): the board with times, seq and publisher.
pub fn snapshot(endpoint: &str) -> status_board::protocol::Snapshot {
    use status_board::protocol::{ExtendedReply, parse_extended_reply};
    match parse_extended_reply(&request(endpoint, b"_:@board")) {
        Ok(ExtendedReply::Snapshot(snapshot)) => snapshot,
        other => panic!("not a snapshot: {other:?}"),
    }
}

/// A SUB socket on `publisher`, subscribed to everything, logged in as
/// `(user, password)` if given; LINGER 0, receives bounded by [`REPLY_TIMEOUT`].
pub fn subscriber(
    context: &zmq::Context,
    publisher: &str,
    login: Option<(&str, &str)>,
) -> zmq::Socket {
    let socket = unconnected_subscriber(context, login);
    socket.connect(publisher).expect("connect");
    socket
}

/// A [`subscriber`] and a [`monitor`] of all its events, set up before it
/// connects: read its handshake with [`handshake`].
pub fn monitored_subscriber(
    context: &zmq::Context,
    publisher: &str,
    login: Option<(&str, &str)>,
) -> (zmq::Socket, zmq::Socket) {
    let socket = unconnected_subscriber(context, login);
    let monitor = monitor(context, &socket, zmq::SocketEvent::ALL as i32);
    socket.connect(publisher).expect("connect");
    (socket, monitor)
}

fn unconnected_subscriber(context: &zmq::Context, login: Option<(&str, &str)>) -> zmq::Socket {
    let socket = context.socket(zmq::SUB).expect("SUB");
    socket.set_linger(0).expect("LINGER");
    socket.set_subscribe(b"").expect("subscribe");
    if let Some((user, password)) = login {
        socket.set_plain_username(Some(user)).expect("user");
        socket.set_plain_password(Some(password)).expect("password");
    }
    set_receive_timeout(&socket, REPLY_TIMEOUT);
    socket
}

/// The next heartbeat the publisher sends `subscriber` (every second): once
/// one comes, the subscription has reached the publisher.
pub fn heartbeat(subscriber: &zmq::Socket) -> Vec<u8> {
    let frame = subscriber.recv_bytes(0).expect("a heartbeat");
    assert!(frame.starts_with(b"hb "), "not a heartbeat: {frame:?}");
    frame
}

/// A monitor of `socket`'s `events` (a `zmq::SocketEvent` mask), to be
/// read with [`monitor_event`]; set up before `socket` connects.
pub fn monitor(context: &zmq::Context, socket: &zmq::Socket, events: i32) -> zmq::Socket {
    // inproc names are per context; a counter keeps them apart within one.
    static MONITORS: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "inproc://test-monitor-{}",
        MONITORS.fetch_add(1, Ordering::Relaxed)
    );
    socket.monitor(&name, events).expect("monitor");
    let monitor = context.socket(zmq::PAIR).expect("PAIR");
    monitor.connect(&name).expect("connect the monitor");
    monitor
}

/// The next event a [`monitor`] reports, waited for up to `within`.
pub fn monitor_event(monitor: &zmq::Socket, within: Duration) -> zmq::SocketEvent {
    set_receive_timeout(monitor, within);
    // Two frames: the event number and its value, then the endpoint.
    let frames = monitor.recv_multipart(0).expect("a monitor event");
    zmq::SocketEvent::from_raw(u16::from_ne_bytes([frames[0][0], frames[0][1]]))
}

/// How the next handshake on a [`monitor`]ed socket ended.
pub fn handshake(monitor: &zmq::Socket) -> zmq::SocketEvent {
    loop {
        let event = monitor_event(monitor, REPLY_TIMEOUT);
        if matches!(
            event,
            zmq::SocketEvent::HANDSHAKE_SUCCEEDED
                | zmq::SocketEvent::HANDSHAKE_FAILED_AUTH
                | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL
                | zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL
        ) {
            return event;
        }
    }
}
