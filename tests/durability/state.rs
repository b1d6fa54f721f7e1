//! Where the state lives and who holds it: a path that cannot be used, the
//! default per user and address, a board under an older name, a second
//! server on the same file, a start that fails, and none at all (in memory).

use std::path::Path;
use std::process::Stdio;

use crate::common::{self, Server, run_server, server_command};
use crate::state_in;

#[test]
fn an_unwritable_state_path_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"").expect("write");
    let state = blocker.join("board.log");
    let (code, stdout, stderr) = run_server(&["0", "--state", state.to_str().expect("UTF-8")]);
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "", "no Waiting line: nothing was served");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&blocker.display().to_string()), "{stderr}");
}

#[test]
fn a_state_path_in_a_missing_directory_is_refused_and_nothing_is_made() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("typo/dir");
    let state = missing.join("board.log");
    let (code, stdout, stderr) = run_server(&[
        "--bind",
        "tcp://127.0.0.1:*",
        "--state",
        state.to_str().expect("UTF-8"),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "", "nothing served");
    assert_eq!(
        stderr,
        format!(
            "status_server: error: the directory {} does not exist; create it first, \
             or correct --state {}\n",
            missing.display(),
            state.display()
        )
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert!(left.is_empty(), "no directory made: {left:?}");
    // Its directory made by hand, the same path is taken.
    std::fs::create_dir_all(&missing).expect("mkdir -p");
    let server = Server::start_on(&state, &[]);
    assert_eq!(server.request_text("a: here"), "- a: here\n");
    assert!(state.exists());
}

#[test]
fn one_name_is_one_name_wherever_the_server_counts_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = Server::start_on(&state, &["--max-entries", "1"]);
    let settings = server.stderr.find("Settings:");
    assert!(settings.ends_with(", at most 1 name."), "{settings}");
    server.request_text("a: 1");
    assert_eq!(
        server.request_text("b: 2"),
        "error: full: board is full (1 name); existing names can still update"
    );
    let (status, _, log) = server.stop_with_output(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        log.last().map(String::as_str),
        Some("Stopped: 1 name on the board, all of it on disk.")
    );
    let again = Server::start_on(&state, &[]);
    let summary = again.stderr.find("State:");
    assert_eq!(
        summary,
        format!(
            "State: {} (1 name restored, fsync everysec).",
            state.display()
        )
    );
}

#[test]
fn a_second_server_on_the_same_state_file_refuses_to_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let first = Server::start_on(&state, &[]);
    first.request_text("a: mine");
    let (code, stdout, stderr) = run_server(&["0", "--state", state.to_str().expect("UTF-8")]);
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    assert!(
        stderr.contains(&state.display().to_string())
            && stderr.contains("in use by another status_server"),
        "{stderr}"
    );
    assert_eq!(
        first.request_text("_:"),
        "- a: mine\n",
        "the first is unharmed"
    );
}

/// Starts the server with a private HOME on `args`; its first stderr line (the state line).
fn start_with_home(home: &Path, args: &[&str]) -> (Server, String) {
    let mut command = server_command();
    command
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_STATE_HOME")
        .stdin(Stdio::null());
    let server = Server::spawn(&mut command);
    let summary = server.stderr.next("the state line");
    (server, summary)
}

#[test]
fn the_default_state_is_per_user_and_keyed_by_address_and_port() {
    let home = tempfile::tempdir().expect("temp dir");
    let port = common::free_port();
    let state = |host: &str| {
        home.path()
            .join(format!(".local/state/status-board/tcp-{host}-{port}.log"))
    };
    let (first, summary) = start_with_home(home.path(), &[&port.to_string()]);
    assert_eq!(
        summary,
        format!(
            "State: {} (0 names restored, fsync everysec).",
            state("127.0.0.1").display()
        )
    );
    assert!(state("127.0.0.1").exists());
    // Another address, the same port: another board, not "in use".
    let (second, summary) = start_with_home(home.path(), &[&port.to_string(), "127.0.0.2"]);
    assert!(
        summary.contains(&state("127.0.0.2").display().to_string()),
        "{summary}"
    );
    for server in [first, second] {
        let (status, _) = server.stop(libc::SIGINT);
        assert_eq!(status.code(), Some(0));
    }
}

#[test]
fn a_board_kept_under_the_old_name_is_found_after_an_upgrade() {
    let home = tempfile::tempdir().expect("temp dir");
    let port = common::free_port();
    let dir = home.path().join(".local/state/status-board");
    std::fs::create_dir_all(&dir).expect("state dir");
    let old = dir.join(format!("port-{port}.log"));
    let mut data = status_board::storage::MAGIC.to_vec();
    status_board::storage::encode_set(&mut data, "alice", ": from before", 1).expect("record");
    std::fs::write(&old, data).expect("the old board");
    // Older versions left it as the umask made it (0644 under 022): tightened.
    let (server, warning) = start_with_home(home.path(), &[&port.to_string()]);
    assert!(
        warning.starts_with("warning: ") && warning.contains("set it to 0600"),
        "{warning}"
    );
    let summary = server.stderr.next("the state line");
    assert!(
        summary.contains(&old.display().to_string()) && summary.contains("(1 name restored,"),
        "{summary}"
    );
    assert_eq!(server.request_text("_:"), "- alice: from before\n");
}

#[test]
fn a_start_that_fails_leaves_no_state_file() {
    let taken = Server::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    for (args, says) in [
        (vec!["--bind", taken.endpoint.as_str()], "in use"),
        (vec!["--bind", "nonsense"], "cannot bind nonsense"),
        (
            vec!["--bind", "tcp://127.0.0.1:*", "--publish", "nonsense"],
            "cannot bind nonsense",
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--state", state.to_str().expect("UTF-8")]);
        let (code, _, stderr) = run_server(&all);
        assert_eq!(code, Some(1), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}

#[test]
fn in_memory_says_so_and_keeps_nothing() {
    let home = tempfile::tempdir().expect("temp dir");
    let server = Server::spawn(
        server_command()
            .args(["--in-memory", "--bind", "tcp://127.0.0.1:*"])
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path())
            .current_dir(home.path())
            .stdin(Stdio::null()),
    );
    let line = server.stderr.next("state line");
    assert!(line.contains("in memory only"), "{line}");
    assert_eq!(server.request(b"a: 1"), b"- a: 1\n");
    let (status, _, log) = server.stop_with_output(libc::SIGINT);
    assert_eq!(status.code(), Some(0));
    // What is true of a board kept in memory, not "all of it on disk".
    let stopped = log.iter().find(|line| line.contains("Stopped:"));
    assert_eq!(
        stopped.map(String::as_str),
        Some("Stopped: 1 name on the board, gone with the server (--in-memory: nothing on disk)."),
        "{log:?}"
    );
    let left: Vec<_> = std::fs::read_dir(home.path()).expect("list").collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
}
