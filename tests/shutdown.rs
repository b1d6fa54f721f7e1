//! A stop when the disk does not answer: Ctrl-C or SIGTERM still ends the
//! server within a bound, with exit 1 and a line that says what may not be
//! on disk. The hung disk is the `hang-fsync` test fault (`docs/STORAGE.md`):
//! once the state is open, every fsync of it never returns.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;

/// The server's bounds: 5 s for the updates in hand, 2 s for the final fsync.
/// Past this (with room for a loaded machine), the stop is not bounded.
const STOP_BOUND: Duration = Duration::from_secs(15);

/// A server on `state` whose fsyncs never return once it has started.
fn on_a_hung_disk(state: &Path, fsync: &str) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_status_server"));
    command
        .args(["--bind", "tcp://127.0.0.1:*", "--quiet", "--fsync", fsync])
        .args(["--state", state.to_str().expect("UTF-8 temp path")])
        .env(status_board::storage::FAULTS_ENV, "hang-fsync")
        .stdin(std::process::Stdio::null());
    Server::spawn(&mut command)
}

/// Sends `signal`, waits for the exit within [`STOP_BOUND`]; returns the exit
/// code, how long it took and the stderr lines not read yet.
fn stop(mut server: Server, signal: i32) -> (Option<i32>, Duration, Vec<String>) {
    let started = Instant::now();
    common::send_signal(&server.child, signal);
    let status = common::wait_timeout(&mut server.child, STOP_BOUND)
        .unwrap_or_else(|| panic!("no exit within {STOP_BOUND:?} of the signal"));
    let took = started.elapsed();
    (status.code(), took, server.stderr.rest())
}

/// The one error line of a stop that could not fsync.
fn not_synced_line(stderr: &[String], state: &Path) -> String {
    let lines: Vec<&String> = stderr
        .iter()
        .filter(|l| l.starts_with("status_server: error: "))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr:?}");
    let line = lines[0].clone();
    let says = format!(
        "status_server: error: cannot fsync {} within ",
        state.display()
    );
    assert!(
        line.starts_with(&says) && line.contains("(the disk does not answer)"),
        "{line}"
    );
    assert!(
        !stderr.iter().any(|l| l.starts_with("Stopped:")),
        "no claim that all is on disk: {stderr:?}"
    );
    line
}

fn state_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("board.log")
}

#[test]
fn sigterm_on_a_hung_disk_ends_in_time_and_names_the_acknowledged_update_at_risk() {
    // `--fsync no`: the update is acknowledged once written; only the final
    // fsync would make it survive a power cut, and it never returns.
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = on_a_hung_disk(&state, "no");
    assert_eq!(server.request_text("alice: here"), "- alice: here\n");
    let (code, took, stderr) = stop(server, libc::SIGTERM);
    assert_eq!(code, Some(1), "{stderr:?}");
    let line = not_synced_line(&stderr, &state);
    // The record of `alice: here`, right after the 8-byte header.
    let record = 8 + 11 + "alice".len() + ": here".len();
    assert!(
        line.ends_with(&format!(
            "; the last change written (acknowledged; {record} bytes from byte offset 8) \
             may not be on disk"
        )),
        "{line}"
    );
    assert!(took < STOP_BOUND, "stopped in {took:?}");
    eprintln!("stopped in {took:?}");
}

#[test]
fn ctrl_c_on_a_hung_disk_under_fsync_always_ends_in_time_and_names_what_was_in_flight() {
    // `--fsync always`: the update is written and waits for its fsync, never
    // answered. The stop waits its grace for it, then gives up.
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = on_a_hung_disk(&state, "always");
    let context = zmq::Context::new();
    let socket = context.socket(zmq::REQ).expect("REQ");
    socket.set_linger(0).expect("LINGER");
    socket.connect(&server.endpoint).expect("connect");
    socket.send("alice: here", 0).expect("send");
    // Written before its fsync is asked for: the file shows it.
    let deadline = Instant::now() + common::REPLY_TIMEOUT;
    while !std::fs::read(&state)
        .expect("read the state")
        .windows(11)
        .any(|w| w == b"alice: here")
    {
        assert!(Instant::now() < deadline, "the update was never written");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (code, took, stderr) = stop(server, libc::SIGINT);
    assert_eq!(code, Some(1), "{stderr:?}");
    let line = not_synced_line(&stderr, &state);
    assert!(
        line.contains("; the last change written (not acknowledged yet; "),
        "{line}"
    );
    assert!(took < STOP_BOUND, "stopped in {took:?}");
    assert_eq!(
        socket.poll(zmq::POLLIN, 0).expect("poll"),
        0,
        "never acknowledged"
    );
    eprintln!("stopped in {took:?}");
}
