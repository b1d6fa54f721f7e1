//! status-board: a ZeroMQ REQ/REP status service, wire-compatible with the
//! Python original in `shared/reference/status_server.md`.
//!
//! A server keeps a name → status board and answers every request with the
//! whole board; clients post updates (`alice: in a meeting`) or poll (`_:`).
//!
//! # Layout
//!
//! One module per job; only what the binaries and tests use is public.
//!
//! - [`protocol`]: the wire format, shared by server and client: requests,
//!   replies, their errors, and the extensions (snapshots, unchanged polls,
//!   clear, published changes). `docs/PROTOCOL.md` is the long form.
//! - [`server`]: the serve loop (`server/mod.rs`), its configuration and
//!   sockets (`config.rs`), the publisher of changes (`publisher.rs`), the
//!   board sent without a copy (`reply.rs`), connections kept below the
//!   open-file limit (`connections.rs`), and logins (`auth/`: the users
//!   file, rights, and the ZAP handler in `auth/zap/` with its fair queue,
//!   its checkers and its log).
//! - `store`: the board and its log together: an update is applied only once
//!   stored; the TTL; time stamps that never go back.
//! - `board`: the ordered name → status map, kept as its encoded reply with
//!   an index beside it, and the numbered changes the publisher sends.
//! - [`storage`]: the state file: record format (`record.rs`), appends and
//!   compaction (`log.rs`), the fsync thread (`syncer.rs`), replay and repair
//!   (`replay.rs`), lock and paths (`files.rs`). `docs/STORAGE.md`.
//! - [`client`]: what `status_client` does: the request with retries
//!   (`request.rs`) and across outages (`link.rs`), logins (`login.rs`), the
//!   one-update modes (`modes.rs`), keeping a copy of the board in step
//!   (`follow.rs`, `mirror.rs`; `status_web` uses them too), the watcher
//!   (`watcher.rs`), and how boards are printed (`render.rs`).
//! - [`shutdown`]: the flag that Ctrl-C, SIGTERM or a test raises, and how
//!   often every wait looks at it.
//! - [`curve`]: CURVE key pairs for both programs, where libzmq has CURVE.
//! - [`cli`]: shell completions and man pages from the command lines, and `--interval`.
//! - `clock`: milliseconds since the Unix epoch, set by hand in unit tests.
//! - `secret_file`: reading a file of secrets only when no one else can.
//! - [`sys`]: the C library calls beyond std (open-file limit, allocator).
//! - [`visible`]: text from elsewhere made safe to print on a terminal.
//! - `fuzz_api`: in a fuzzing build only, what the fuzz targets in `fuzz/`
//!   reach beyond the public API (`docs/FUZZING.md`).
//!
//! `status_web`, the board in a browser, lives in `src/bin/status_web/`: its
//! HTTP side (axum on tokio) stays out of this crate, so the server and the
//! client link no async runtime. It follows the board with the client's
//! [`client::follow`]. `docs/WEB.md`.
//!
//! The binaries in `src/bin/` only parse arguments, call into this crate, and
//! report an error once, with its causes, via [`error_chain`].

// `unsafe` has one home, `sys`, where each block says why it is sound.
#![deny(unsafe_code)]

pub mod cli;
pub mod client;
pub mod curve;
pub mod endpoint;
pub mod protocol;
pub mod server;
pub mod shutdown;
pub mod storage;
#[allow(unsafe_code)]
pub mod sys;
pub mod visible;

// The crate-private parsers of bytes from outside, for the fuzz targets in
// `fuzz/` (cargo fuzz builds with `--cfg fuzzing`); not part of the API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz_api;

mod board;
mod clock;
mod monitor;
mod secret_file;
mod side_thread;
mod store;
mod xdg;

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
