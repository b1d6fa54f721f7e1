//! The libzmq floor: bare sockets that do what our server does with no
//! server logic at all. Each runs as a child process of this harness (the
//! harness binary itself, with a `--serve-floor…` argument), as our server
//! runs as one.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::common;

/// The argument that makes this binary a REP floor answering with the file's bytes.
pub const SERVE_FLOOR: &str = "--serve-floor=";
/// The argument that makes this binary a bare publisher.
pub const SERVE_FLOOR_PUB: &str = "--serve-floor-pub";

/// A bare REP socket that answers every request with a fixed reply.
pub struct Floor {
    child: Child,
    pub endpoint: String,
}

impl Floor {
    pub fn start(reply: &[u8], dir: &Path) -> Floor {
        let file = dir.join(format!("floor-reply-{}", reply.len()));
        std::fs::write(&file, reply).expect("write reply");
        let mut child = Command::new(std::env::current_exe().expect("harness path"))
            .arg(format!("{SERVE_FLOOR}{}", file.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn floor");
        let stdout = common::Lines::from(child.stdout.take().expect("piped"));
        let endpoint = common::endpoint_from_waiting_line(&stdout.next("the floor's endpoint"));
        Floor { child, endpoint }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A receive timeout for the floors' sockets: each second without a request
/// they look whether the harness is still there.
const IDLE_MS: i32 = 1_000;

/// Whether the harness that started this process has gone (killed before it
/// could kill us): then this process has been handed to another parent.
fn orphaned(parent: u32) -> bool {
    std::os::unix::process::parent_id() != parent
}

fn bound_socket(context: &zmq::Context, kind: zmq::SocketType) -> (zmq::Socket, String) {
    let socket = context.socket(kind).expect("socket");
    socket.set_linger(0).expect("LINGER");
    socket.set_rcvtimeo(IDLE_MS).expect("RCVTIMEO");
    socket.bind("tcp://127.0.0.1:*").expect("bind");
    let endpoint = socket
        .get_last_endpoint()
        .expect("endpoint")
        .expect("UTF-8");
    (socket, endpoint)
}

/// The floor process: receive, answer with the fixed reply, nothing else.
pub fn serve_floor(reply_file: &str) {
    let parent = std::os::unix::process::parent_id();
    let reply = std::fs::read(reply_file).expect("read reply");
    let context = zmq::Context::new();
    let (socket, endpoint) = bound_socket(&context, zmq::REP);
    println!("Waiting for clients on '{endpoint}'.");
    // Killed by the harness when it is done.
    while !orphaned(parent) {
        match socket.recv_msg(0) {
            Ok(_) => socket.send(&reply[..], 0).expect("floor send"),
            Err(zmq::Error::EAGAIN) => {}
            Err(e) => panic!("floor receive: {e}"),
        }
    }
}

/// The bare publisher: a PUB socket that, each time its REP control socket
/// asks, publishes the text it was sent, then answers. Prints both endpoints.
pub fn serve_floor_pub() {
    let parent = std::os::unix::process::parent_id();
    let context = zmq::Context::new();
    let (publisher, publish) = bound_socket(&context, zmq::PUB);
    publisher.set_sndhwm(100_000).expect("SNDHWM");
    let (control, control_endpoint) = bound_socket(&context, zmq::REP);
    println!("{publish} {control_endpoint}");
    // Killed by the harness when it is done.
    while !orphaned(parent) {
        match control.recv_bytes(0) {
            Ok(message) => {
                publisher.send(&message, 0).expect("publish");
                control.send(&b"sent"[..], 0).expect("answer");
            }
            Err(zmq::Error::EAGAIN) => {}
            Err(e) => panic!("bare publisher's control: {e}"),
        }
    }
}
