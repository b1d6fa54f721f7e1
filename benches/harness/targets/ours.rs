//! Our server, started as its own process on a free loopback port.

use std::path::{Path, PathBuf};

use status_board::storage;

use crate::common;

/// Our server with `extra` arguments (in memory unless given `--state`),
/// quiet, killed on drop.
pub fn ours(extra: &[&str]) -> common::Server {
    let mut args = vec!["--quiet"];
    args.extend_from_slice(extra);
    common::Server::start(&args)
}

/// Our server on the state file `state`, `--fsync no`, with `extra` arguments.
pub fn ours_on(state: &Path, extra: &[&str]) -> common::Server {
    let mut args = vec!["--state", state.to_str().expect("UTF-8"), "--fsync", "no"];
    args.extend_from_slice(extra);
    ours(&args)
}

/// Our server publishing its changes, on the state file `state` with
/// `extra` arguments (the default durability unless they say otherwise).
pub fn ours_publishing(state: &Path, extra: &[&str]) -> common::Server {
    let mut args = vec![
        "--publish",
        "tcp://127.0.0.1:*",
        "--state",
        state.to_str().expect("UTF-8"),
    ];
    args.extend_from_slice(extra);
    ours(&args)
}

/// The name and status of entry `i` of every benchmark board (ours, the
/// original's, Redis's): `user-00042`, `status text of user 42`.
pub fn entry(i: usize) -> (String, String) {
    (format!("user-{i:05}"), format!("status text of user {i}"))
}

/// A state file holding `n` entries like a real board's, for instant start-up.
pub fn prefilled_state(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join(format!("board-{n}.log"));
    let mut data = storage::MAGIC.to_vec();
    let now_ms = common::now_ms();
    for i in 0..n {
        let (name, status) = entry(i);
        storage::encode_set(&mut data, &name, &format!(": {status}"), now_ms).expect("record");
    }
    std::fs::write(&path, data).expect("write state");
    path
}

/// The TCP port of the publisher our server names in its snapshot.
pub fn publish_port(server: &common::Server) -> u16 {
    publish_endpoint(server)
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the publisher's port")
}

/// The publisher's endpoint our server names in its snapshot.
pub fn publish_endpoint(server: &common::Server) -> String {
    common::snapshot(&server.endpoint).header.publish[0].clone()
}
