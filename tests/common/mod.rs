//! Helpers shared by the integration tests and the benchmark harness (which
//! includes this file): the real binaries, real sockets. One module a job:
//!
//! | module | its job |
//! |---|---|
//! | [`process`] | children: output read as lines on threads, signals, bounded waits, run to the end, killed on drop |
//! | [`status_server`] | `status_server` on a free port, or run to its exit |
//! | [`in_process`] | the server loop in this process |
//! | [`status_client`] | `status_client` run to its end, or watching |
//! | [`status_web`] | `status_web`, spoken to over HTTP |
//! | [`terminal`] | a program on a pseudo-terminal, and what it may write there |
//! | [`zeromq`] | requests, snapshots, subscriptions and socket monitors |
//! | [`logins`] | users files and password hashes |
//! | [`reference`] | the Python original |
//! | [`proxy`] | the byte-counting proxy |
//! | [`limits`] | open-file limits |
//! | [`procfs`] | a child's memory and CPU time |
//! | [`needing`] | suites whose real part may be missing |
//! | [`zmtp`] | an attacker's connections, and ZMTP by hand |
//!
//! Their items are used through the flat paths below (`common::Server`),
//! but for [`zmtp`]'s, which keep their module's name (`zmtp::request` is
//! not a ZeroMQ request of [`zeromq`]).
//!
//! Each test crate compiles every module and uses a few of their items:
//! what one crate does not use is dead code there. So each module allows
//! dead code for itself (an attribute under its doc says so, and why), the
//! globs below allow unused imports, and nothing else allows anything: the
//! library and each test file are linted in full.

pub mod in_process;
pub mod limits;
pub mod logins;
pub mod needing;
pub mod process;
pub mod procfs;
pub mod proxy;
pub mod reference;
pub mod status_client;
pub mod status_server;
pub mod status_web;
pub mod terminal;
pub mod zeromq;
pub mod zmtp;

#[allow(unused_imports, reason = "each test crate uses a few of these")]
pub use {
    in_process::*, limits::*, logins::*, needing::*, process::*, procfs::*, proxy::*, reference::*,
    status_client::*, status_server::*, status_web::*, terminal::*, zeromq::*,
};
