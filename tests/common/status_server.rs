//! `status_server` as a child process: started on a free loopback port and
//! spoken to, or run to its exit (a refused start).

#![allow(dead_code, reason = "each test crate uses a few of these items")]

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::process::{
    EXIT_TIMEOUT, Lines, REPLY_TIMEOUT, Running, run_command, send_signal, spawn_piped,
    wait_timeout,
};
use super::zeromq::{request, request_parts_as, request_text};

/// Every `--fsync` policy, for the tests that hold for each.
pub const FSYNC_POLICIES: [&str; 3] = ["always", "everysec", "no"];

/// A running `status_server` on a free loopback port, killed on drop.
pub struct Server {
    pub child: Running,
    pub endpoint: String,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Server {
    /// Starts the server on `state`, quiet, with `extra` arguments.
    pub fn start_on(state: &Path, extra: &[&str]) -> Server {
        let mut args = vec![
            "--state",
            state.to_str().expect("UTF-8 temp path"),
            "--quiet",
        ];
        args.extend_from_slice(extra);
        Server::start(&args)
    }

    /// Starts the server on `tcp://127.0.0.1:*` with extra arguments, in memory unless given `--state`.
    pub fn start(args: &[&str]) -> Server {
        let mut all = vec!["--bind", "tcp://127.0.0.1:*"];
        if !args.contains(&"--state") {
            all.push("--in-memory");
        }
        all.extend_from_slice(args);
        Server::start_raw(&all)
    }

    /// Starts the server with exactly these arguments; its first line names the endpoint.
    pub fn start_raw(args: &[&str]) -> Server {
        Server::spawn(server_command().args(args).stdin(Stdio::null()))
    }

    /// Spawns the server `command`; its first line names the endpoint.
    pub fn spawn(command: &mut Command) -> Server {
        let (child, stdout, stderr) = spawn_piped(command);
        let child = Running(child);
        let first = stdout.next("the 'Waiting for clients' line");
        let endpoint = endpoint_from_waiting_line(&first);
        Server {
            child,
            endpoint,
            stdout,
            stderr,
        }
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        port_of(&self.endpoint)
    }

    /// Sends one frame on a fresh REQ socket and returns the reply.
    pub fn request(&self, frame: &[u8]) -> Vec<u8> {
        request(&self.endpoint, frame)
    }

    /// The reply as text.
    pub fn request_text(&self, frame: &str) -> String {
        request_text(&self.endpoint, frame)
    }

    /// The reply as text, logged in as `user` (a server with `--auth`).
    pub fn request_text_as(&self, user: &str, password: &str, frame: &str) -> String {
        let reply = request_parts_as(
            Some((user, password)),
            &self.endpoint,
            &[frame.as_bytes()],
            REPLY_TIMEOUT,
        )
        .expect("a reply from the server");
        String::from_utf8(reply).expect("UTF-8 reply")
    }

    /// Sends a signal, waits for the exit, and returns the exit status and
    /// the stdout and stderr lines not read yet, up to the end.
    pub fn stop_with_output(mut self, signal: i32) -> (ExitStatus, Vec<String>, Vec<String>) {
        let (stdout, stderr) = (self.stdout.take(), self.stderr.take());
        let (status, _) = self.stop(signal);
        (status, stdout.rest(), stderr.rest())
    }

    /// Sends a signal and waits for the exit, failing if it takes too long.
    pub fn stop(mut self, signal: i32) -> (ExitStatus, Duration) {
        let started = Instant::now();
        send_signal(&self.child, signal);
        let status =
            wait_timeout(&mut self.child, EXIT_TIMEOUT).expect("server exits after a signal");
        (status, started.elapsed())
    }
}

/// The server binary, to be given its arguments.
pub fn server_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_status_server"))
}

/// Runs the server with `args` to its exit (a start it refuses, a mode that
/// ends by itself): exit code, stdout, stderr.
pub fn run_server(args: &[&str]) -> (Option<i32>, String, String) {
    run_command(server_command().args(args), "")
}

/// `tcp://HOST:PORT` from either form of the server's first line.
pub fn endpoint_from_waiting_line(line: &str) -> String {
    if let Some(rest) = line.strip_prefix("Waiting for clients on port '") {
        let (port, rest) = rest.split_once('\'').expect("quoted port");
        let host = rest
            .strip_prefix(" on host '")
            .and_then(|h| h.strip_suffix("'."))
            .expect("quoted host");
        return status_board::endpoint::tcp_endpoint(host, port.parse().expect("numeric port"));
    }
    line.strip_prefix("Waiting for clients on '")
        .and_then(|l| l.strip_suffix("'."))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

/// The port of a `tcp://HOST:PORT` endpoint.
pub fn port_of(endpoint: &str) -> u16 {
    endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{endpoint} ends in a port"))
}

/// Milliseconds since the Unix epoch, as the server stamps statuses.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A loopback port that was free a moment ago, for programs that take no `*`.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
