//! The real `status_client` against the real `status_server` (and against
//! servers that are not), in every mode. One file a subject:
//!
//! - `modes`: one-shot, piped, watching, JSON, and at a prompt;
//! - `input`: what it refuses to send, and `--sanitize`;
//! - `network`: servers that are silent, gone, restarted, not ZeroMQ, or
//!   not a server's main endpoint;
//! - `hostile`: what a hostile server sends must not drive the terminal;
//! - `failover`: several servers of one board, and moving on from one that
//!   is dead, silent or without quorum;
//! - `stale`: a gateway that cannot reach its cluster, said and unsaid.

#[path = "../common/mod.rs"]
mod common;

mod failover;
mod hostile;
mod input;
mod modes;
mod network;
mod stale;

/// A server as far as a client sees it: a REP socket on a free loopback port
/// that answers each request with `answer(request)`, on a thread, until the
/// test ends (or 60 s pass with nothing asked); its endpoint.
fn answering_with(answer: impl Fn(&[u8]) -> Vec<u8> + Send + 'static) -> String {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::REP).expect("REP");
    socket.set_linger(0).expect("LINGER");
    socket.set_rcvtimeo(60_000).expect("RCVTIMEO");
    socket.bind("tcp://127.0.0.1:*").expect("bind");
    let endpoint = socket
        .get_last_endpoint()
        .expect("endpoint")
        .expect("UTF-8");
    std::thread::spawn(move || {
        let _context = context;
        while let Ok(request) = socket.recv_bytes(0) {
            if socket.send(answer(&request), 0).is_err() {
                return;
            }
        }
    });
    endpoint
}
