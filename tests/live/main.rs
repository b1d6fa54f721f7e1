//! The live board: pushed changes, unchanged polls, ages, expiry and clear,
//! with the real binaries (and the Python original for the fallbacks). One
//! file a subject:
//!
//! - `feed`: what the publisher pushes and what polls cost, ages, expiry, clear;
//! - `screen`: the watcher on a terminal: redrawn in place, fitted, stale.

#[path = "../common/mod.rs"]
mod common;

mod feed;
mod screen;

use serde_json::{Value, json};

use common::Server;

/// Our server, publishing on a free loopback port.
fn publishing(extra: &[&str]) -> Server {
    let mut args = vec!["--publish", "tcp://127.0.0.1:*", "--quiet"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// `[{name, status}]` of a JSON board, without the times.
fn plain(doc: &Value) -> Value {
    let entries = doc["entries"].as_array().expect("entries");
    entries
        .iter()
        .map(|e| json!({"name": e["name"], "status": e["status"]}))
        .collect()
}

/// Stops `server` cleanly and starts a new one on the same state file.
fn restarted(server: Server, state: &str) -> Server {
    let (status, _) = server.stop(libc::SIGTERM);
    assert!(status.success(), "{status}");
    Server::start(&["--state", state, "--quiet"])
}
