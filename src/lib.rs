//! status-board: a ZeroMQ REQ/REP status service, wire-compatible with the
//! Python original in `shared/reference/status_server.md`.
//!
//! A server keeps a name → status board and answers every request with the
//! whole board; clients post updates (`alice: in a meeting`) or poll (`_:`).
//!
//! # Layout
//!
//! Layers, top to bottom; a module uses only those below it
//! (`docs/ARCHITECTURE.md` has the map, where each change goes, and how a
//! request flows):
//!
//! 1. the binaries in `src/bin/` (`status_web` is its own crate root, so that
//!    its async HTTP stays out of this crate);
//! 2. [`server`] and [`client`], side by side;
//! 3. `store`: the board and its log together;
//! 4. `board` (the name → status map as its reply), [`storage`] (the
//!    state file's records) and `etcd` (a client of an etcd cluster, for a
//!    gateway's board);
//! 5. [`protocol`] (the wire format both sides share) and [`endpoint`];
//! 6. the ground: [`sys`] (every C call: the one home of `unsafe`),
//!    [`shutdown`], `side_thread`, `monitor`, `clock`, `secret_file`, `xdg`,
//!    [`curve`], [`visible`], [`cli`].
//!
//! Only what the binaries, tests, the harness and the fuzz targets (through
//! `fuzz_api`, in a fuzzing build) use is public. The binaries parse
//! arguments, call into this crate, and report an error once, with its
//! causes, via [`error_chain`]; exit codes are theirs.

// `unsafe` has one home, `sys`, where each block says why it is sound.
#![deny(unsafe_code)]

pub mod cli;
pub mod client;
pub mod curve;
pub mod endpoint;
pub use etcd::{Credentials as EtcdCredentials, TlsFiles as EtcdTlsFiles};
pub use store::{ClusterConfig, ClusterError, Imported};
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
mod etcd;
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
