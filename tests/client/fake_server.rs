//! A stand-in server for what a real one cannot be made to do on cue (a
//! gateway without quorum, or marked stale): shared by the client and web
//! tests (`tests/web/main.rs` includes this file by path).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A gateway of a cluster as far as a watcher sees it: a `_:@since` poll
/// at its number is `unchanged`, any other request gets a snapshot of one
/// entry (alice), marked `stale SINCE` while `stale` is set; its endpoint,
/// and SINCE (5 s ago, ms since the Unix epoch).
pub fn stale_gateway(stale: Arc<AtomicBool>) -> (String, u64) {
    let since = now() - 5_000;
    let endpoint = answering_with(move |request| {
        if request.starts_with(b"_:@since c1 5") {
            return b"unchanged 5".to_vec();
        }
        let line = match stale.load(Ordering::SeqCst) {
            true => format!("stale {since}\n"),
            false => String::new(),
        };
        let now = now();
        format!("status-board 1\nepoch c1\nseq 5\nnow {now}\n{line}\n{since} alice: here\n")
            .into_bytes()
    });
    (endpoint, since)
}

/// Now, in ms since the Unix epoch.
fn now() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(since_epoch.as_millis()).expect("fits")
}

/// A server as far as a client sees it: a REP socket on a free loopback port
/// that answers each request with `answer(request)`, on a thread, until the
/// test ends (or 60 s pass with nothing asked); its endpoint.
pub fn answering_with(answer: impl Fn(&[u8]) -> Vec<u8> + Send + 'static) -> String {
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
