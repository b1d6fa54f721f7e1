//! status-board: a ZeroMQ REQ/REP status service, wire-compatible with the
//! Python original in `shared/reference/status_server.md`.
//!
//! A server keeps a name → status board and answers every request with the
//! whole board; clients post updates (`alice: in a meeting`) or poll (`_:`).
//!
//! # Layout
//!
//! - [`protocol`]: parse and format requests and replies, and their error enum;
//!   the one place the wire format lives, shared by both binaries, with its
//!   extensions (snapshots, unchanged polls, clear, published changes).
//! - [`board`]: the ordered name → status map, its cached encoded replies, and
//!   the numbered changes the publisher sends.
//! - [`storage`]: the state file, an append-only log of checksummed records,
//!   and the [`storage::Store`] that applies an update only once it is stored.
//! - [`server`]: opening the state, binding the sockets, the request loop that
//!   stores each batch of updates with one write before answering it, expires
//!   old statuses and publishes every change.
//! - [`client`]: sending a request and waiting for its reply, never forever
//!   (the Lazy Pirate pattern).
//! - [`modes`]: what `status_client` does: interactive, piped, one-shot, watch,
//!   and its exit codes.
//! - [`watch`]: a watcher's copy of the board, kept in step by snapshots and
//!   published changes (the Clone pattern).
//! - [`render`]: a board as the original's text block, as JSON, or as a
//!   terminal screen redrawn in place with ages.
//! - [`shutdown`]: the flag that Ctrl-C, SIGTERM or a test raises.
//!
//! The binaries in `src/bin/` only parse arguments, call into this crate, and
//! report an error once, with its causes, via [`error_chain`].

pub mod board;
pub mod client;
pub mod modes;
pub mod protocol;
pub mod render;
pub mod server;
pub mod shutdown;
pub mod storage;
pub mod watch;

use std::error::Error;

/// An error and all its causes on one line, `outer: inner: root`, for the user.
pub fn error_chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
