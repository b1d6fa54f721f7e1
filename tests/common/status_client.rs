//! `status_client` as a child process: run to its end, or watching.

#![allow(dead_code, reason = "each test crate uses a few of these items")]

use std::process::Command;

use super::process::{
    EXIT_TIMEOUT, Lines, Running, run_command, send_signal, spawn_piped, wait_timeout,
};

/// The client's exit code for a refused or missing login, as its `--help`
/// documents it.
pub const EXIT_LOGIN: i32 = 4;

/// `status_client` with these arguments, and no login from the environment
/// (no `STATUS_BOARD_*` variables, no password file) unless a test adds one.
pub fn client(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_status_client"));
    command
        .args(args)
        .env_remove("STATUS_BOARD_USER")
        .env_remove("STATUS_BOARD_PASSWORD")
        .env("XDG_CONFIG_HOME", "/nonexistent/status-board-tests");
    command
}

/// Runs the client to completion with `stdin` as input: exit code, stdout, stderr.
pub fn run_client(args: &[&str], stdin: impl AsRef<[u8]>) -> (Option<i32>, String, String) {
    run_command(&mut client(args), stdin)
}

/// A watcher printing JSON; its stdout and stderr as lines. Killed on drop.
pub struct Watcher {
    pub child: Running,
    pub out: Lines,
    pub err: Lines,
}

impl Watcher {
    pub fn start(endpoint: &str, extra: &[&str]) -> Watcher {
        let (child, out, err) =
            spawn_piped(client(&["_", "--endpoint", endpoint, "--json"]).args(extra));
        Watcher {
            child: Running(child),
            out,
            err,
        }
    }

    /// The next board it prints.
    pub fn next(&self, what: &str) -> serde_json::Value {
        let line = self.out.next(what);
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Ctrl-C; a watcher leaves with 0. Returns what it wrote to stderr.
    pub fn stop(mut self) -> Vec<String> {
        send_signal(&self.child, libc::SIGINT);
        let status = wait_timeout(&mut self.child, EXIT_TIMEOUT).expect("exits on Ctrl-C");
        assert_eq!(status.code(), Some(0));
        self.err.rest()
    }
}
