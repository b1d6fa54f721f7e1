//! Logins (`--auth`) with the real binaries. One file a subject:
//!
//! - `rights`: who may change what, read-only users and endpoints, the publisher;
//! - `refusals`: logins refused (alike, at once), users files and their reloads;
//! - `terminal`: logins typed at a terminal;
//! - `restarts`: servers that turn logins off and on under a running client.

#[path = "../common/mod.rs"]
mod common;

mod refusals;
mod restarts;
mod rights;
mod terminal;

use std::time::Duration;

use common::{Server, UsersFile, client, run_command};

/// A server with `--auth` and `extra` arguments.
fn auth_server(users: &UsersFile, extra: &[&str]) -> Server {
    let mut args = vec!["--auth", users.path(), "--quiet"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Runs the client against `endpoint` with `password` in the environment.
fn run_as(password: Option<&str>, endpoint: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = client(args);
    command.args(["--endpoint", endpoint]);
    if let Some(password) = password {
        command.env("STATUS_BOARD_PASSWORD", password);
    }
    run_command(&mut command, "")
}

/// How long a login may take on a busy machine: an argon2 check, made by
/// the server's checkers at a lower priority, in tests run side by side
/// (and beside whatever else the machine runs). A bound, not a measure.
const LOGIN_BOUND: Duration = Duration::from_secs(30);

/// The client on a pseudo-terminal of kind `term`, with no password from
/// the environment; unless `args` say, each try waits 10 s, longer than a
/// login check usually takes even on a busy machine. Each wait for output
/// is bounded by [`LOGIN_BOUND`].
fn on_a_terminal(args: &[&str], term: &str) -> rexpect::session::PtySession {
    let mut command = client(args);
    if !args.contains(&"--timeout") {
        command.args(["--timeout", "10000"]);
    }
    common::on_a_terminal_within(command, term, LOGIN_BOUND)
}
