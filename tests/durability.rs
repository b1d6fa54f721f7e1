//! The durable board with the real server: restarts, kill -9, damage, locks.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::Server;

const POLICIES: [&str; 3] = ["always", "everysec", "no"];

fn state_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("board.log")
}

fn start_on(state: &Path, extra: &[&str]) -> Server {
    Server::start_on(state, extra)
}

/// Runs the server once to completion and returns its exit code and stderr.
fn run_to_exit(args: &[&str]) -> (Option<i32>, String, String) {
    let output = common::run_with_input(
        Command::new(env!("CARGO_BIN_EXE_status_server")).args(args),
        "",
        common::EXIT_TIMEOUT,
    );
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn sigint_then_restart_gives_the_identical_board() {
    for policy in POLICIES {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = state_in(&dir);
        let server = start_on(&state, &["--fsync", policy]);
        for request in [
            "Jackson: I'm BAD",
            "Madonna: material",
            "ci: red",
            "Jackson: better",
            "ci: green",
        ] {
            server.request_text(request);
        }
        let before = server.request(b"_:");
        let (status, _, log) = server.stop_with_output(libc::SIGINT);
        assert_eq!(status.code(), Some(0));
        assert_eq!(
            log.last().map(String::as_str),
            Some("Stopped: 3 names on the board, all of it on disk."),
            "fsync {policy}"
        );

        let again = start_on(&state, &["--fsync", policy]);
        assert_eq!(again.request(b"_:"), before, "fsync {policy}");
        assert_eq!(
            before,
            b"- Jackson: better\n- Madonna: material\n- ci: green\n"
        );
        let summary = again.stderr.next("the state line");
        assert!(
            summary.contains("(3 names restored,") && summary.contains(policy),
            "{summary}"
        );
    }
}

/// A client that updates `wK` with 0, 1, 2, … until stopped; counts every
/// acknowledgement in `acks[k]`. A late reply (a loaded machine) is waited
/// for until the stop: only then is an unanswered update given up.
fn writer(endpoint: String, k: usize, stop: Arc<AtomicBool>, acks: Arc<[AtomicU64]>) -> Written {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::REQ).expect("REQ");
    socket.set_linger(0).expect("LINGER");
    socket.set_rcvtimeo(1000).expect("RCVTIMEO");
    socket.connect(&endpoint).expect("connect");
    let mut acked = None;
    let mut board = Vec::new();
    for i in 0u64.. {
        if stop.load(Ordering::Relaxed) || socket.send(format!("w{k}: {i}").as_str(), 0).is_err() {
            break;
        }
        let reply = loop {
            match socket.recv_bytes(0) {
                Err(zmq::Error::EAGAIN) if !stop.load(Ordering::Relaxed) => continue,
                other => break other,
            }
        };
        match reply {
            Ok(reply) => {
                assert!(reply.starts_with(b"- "), "a board, not {reply:?}");
                acked = Some(i);
                board = reply;
                acks[k].fetch_add(1, Ordering::SeqCst);
            }
            Err(_) => break,
        }
    }
    (acked, board)
}

/// A writer's last acknowledged value and the last board it was answered with.
type Written = (Option<u64>, Vec<u8>);

/// `n` writers (`w0` … `wN-1`) running until [`Writers::finish`].
struct Writers {
    stop: Arc<AtomicBool>,
    /// Each writer's acknowledged updates.
    acks: Arc<[AtomicU64]>,
    handles: Vec<thread::JoinHandle<Written>>,
}

impl Writers {
    fn start(endpoint: &str, n: usize) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acks: Arc<[AtomicU64]> = (0..n).map(|_| AtomicU64::new(0)).collect();
        let handles = (0..n)
            .map(|k| {
                let (endpoint, stop, acks) =
                    (endpoint.to_owned(), Arc::clone(&stop), Arc::clone(&acks));
                thread::spawn(move || writer(endpoint, k, stop, acks))
            })
            .collect();
        Writers {
            stop,
            acks,
            handles,
        }
    }

    /// Updates acknowledged so far, in all.
    fn acks(&self) -> u64 {
        self.acks.iter().map(|a| a.load(Ordering::SeqCst)).sum()
    }

    /// Waits until `n` updates in all have been acknowledged.
    fn wait_for_acks(&self, n: u64) {
        wait_until(&format!("{n} acknowledged updates"), || self.acks() >= n);
    }

    /// Waits until every writer has had at least one update acknowledged
    /// (on a loaded machine one may lag far behind the others).
    fn wait_for_each_writer(&self) {
        wait_until("an acknowledged update from every writer", || {
            self.acks.iter().all(|a| a.load(Ordering::SeqCst) > 0)
        });
    }

    /// Stops them; each one's last acknowledged value and last board.
    fn finish(self) -> Vec<Written> {
        self.stop.store(true, Ordering::Relaxed);
        self.handles
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .collect()
    }
}

/// Waits until `done` says so, looking every few milliseconds; panics naming
/// `what` after a generous bound.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never saw {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

/// The value of `wK` on a parsed board.
fn value_of(board: &[(String, u64)], k: usize) -> Option<u64> {
    let name = format!("w{k}");
    board.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Name → value of a `- wK: N` board, in board order.
fn parse_board(board: &[u8]) -> Vec<(String, u64)> {
    String::from_utf8_lossy(board)
        .lines()
        .map(|line| {
            let (name, value) = line
                .strip_prefix("- ")
                .and_then(|l| l.split_once(": "))
                .unwrap_or_else(|| panic!("bad line {line:?}"));
            (name.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// Hammers a server with `writers` clients, kills it -9 once they have had
/// `acks` updates acknowledged (and each writer at least one), restarts it,
/// and checks every acknowledged update survived, in order.
fn kill_9_under_load(state: &Path, extra: &[&str], writers: usize, acks: u64) -> Server {
    let server = start_on(state, extra);
    let writers = Writers::start(&server.endpoint, writers);
    writers.wait_for_acks(acks);
    writers.wait_for_each_writer();
    let (status, _) = server.stop(libc::SIGKILL);
    assert_eq!(status.code(), None, "killed by a signal");
    let results = writers.finish();
    let again = start_on(state, extra);
    assert_all_acknowledged_survived(&results, &again);
    again
}

/// Every writer's acknowledged value is on the restarted board (or the one
/// after it, sent but not acknowledged), in the order they first appeared.
fn assert_all_acknowledged_survived(results: &[Written], again: &Server) {
    let restored = parse_board(&again.request(b"_:"));
    for (k, (acked, _)) in results.iter().enumerate() {
        let Some(acked) = acked else { continue };
        let value = value_of(&restored, k)
            .unwrap_or_else(|| panic!("w{k} acknowledged {acked} but is gone: {restored:?}"));
        assert!(
            value >= *acked,
            "w{k}: acknowledged {acked}, restored {value}"
        );
        assert!(
            value <= acked + 1,
            "w{k}: restored {value}, never sent past {}",
            acked + 1
        );
    }
    // Order: the longest board any writer saw is how the restored board starts.
    let seen = results
        .iter()
        .map(|(_, board)| parse_board(board))
        .max_by_key(Vec::len)
        .unwrap_or_default();
    let names = |b: &[(String, u64)]| b.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&restored[..seen.len()]), names(&seen), "order kept");
}

#[test]
fn kill_9_under_concurrent_writers_loses_no_acknowledged_update() {
    for policy in POLICIES {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = state_in(&dir);
        let server = kill_9_under_load(&state, &["--fsync", policy], 4, 400);
        // Every writer had an update acknowledged before the kill: all four are back.
        let total: usize = parse_board(&server.request(b"_:")).len();
        assert_eq!(total, 4, "fsync {policy}");
    }
}

#[test]
fn sigint_under_fsync_always_load_finishes_what_is_in_hand() {
    // Batches are in flight when the signal comes: they are synced and answered,
    // the server exits 0 promptly, and every acknowledged update is there.
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = start_on(&state, &["--fsync", "always"]);
    let writers = Writers::start(&server.endpoint, 8);
    writers.wait_for_acks(500);
    let (status, took) = server.stop(libc::SIGINT);
    let acked: Vec<Option<u64>> = writers.finish().into_iter().map(|(a, _)| a).collect();
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(3), "stopped in {took:?}");

    let again = start_on(&state, &[]);
    let restored = parse_board(&again.request(b"_:"));
    for (k, acked) in acked.iter().enumerate() {
        let Some(acked) = acked else { continue };
        let value = value_of(&restored, k);
        assert!(
            value.is_some_and(|v| v >= *acked),
            "w{k}: acknowledged {acked}, restored {value:?}"
        );
    }
}

#[test]
fn compaction_interrupted_by_kill_9_loses_nothing() {
    // The test hook holds each compaction between writing its file and the
    // rename: the kill lands there, with and without the sync thread.
    for policy in POLICIES {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = state_in(&dir);
        let aside = dir.path().join("board.log.compact");
        let args = [
            "--state",
            state.to_str().expect("UTF-8 temp path"),
            "--quiet",
            "--compact-at",
            "1",
            "--fsync",
            policy,
        ];
        let mut command = Command::new(env!("CARGO_BIN_EXE_status_server"));
        command
            .args(["--bind", "tcp://127.0.0.1:*"])
            .args(args)
            .env(
                status_board::storage::FAULTS_ENV,
                "hold-compaction-ms=60000",
            )
            .stdin(std::process::Stdio::null());
        let server = Server::spawn(&mut command);
        let writers = Writers::start(&server.endpoint, 3);
        wait_until("a compaction file", || aside.exists());
        let (status, _) = server.stop(libc::SIGKILL);
        assert_eq!(status.code(), None, "killed by a signal");
        assert!(aside.exists(), "{policy}: killed inside the compaction");
        let results = writers.finish();
        assert!(
            results.iter().any(|(acked, _)| acked.is_some()),
            "{policy}: updates were acknowledged before the compaction"
        );

        let again = start_on(&state, &["--fsync", policy]);
        assert_all_acknowledged_survived(&results, &again);
        let warning = again.stderr.next("the warning");
        assert!(warning.contains("interrupted compaction"), "{warning}");
        assert!(!aside.exists(), "{policy}: the compaction file is gone");
    }
}

#[test]
fn fsync_always_keeps_answering_across_compactions() {
    // The log grows to 16 KiB, then compacts to one record: offsets start over,
    // and the sync thread must start over with them.
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = start_on(&state, &["--fsync", "always", "--compact-at", "16384"]);
    for i in 0..2000 {
        let reply = common::request_parts_within(
            &server.endpoint,
            &[format!("a: update {i}").as_bytes()],
            Duration::from_secs(5),
        );
        assert_eq!(
            reply.as_deref(),
            Some(format!("- a: update {i}\n").as_bytes()),
            "update {i} answered"
        );
    }
    server.stop(libc::SIGKILL);
    let again = start_on(&state, &[]);
    assert_eq!(again.request_text("_:"), "- a: update 1999\n");
}

#[test]
fn compaction_happens_under_concurrent_fsync_always_load() {
    // Batches are nearly always in flight; compaction must still find its moment.
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = start_on(&state, &["--fsync", "always", "--compact-at", "8192"]);
    let writers = Writers::start(&server.endpoint, 8);
    // 2 000 records of about 30 bytes: 60 KB of log without compaction.
    writers.wait_for_acks(2000);
    let acked: u64 = writers
        .finish()
        .into_iter()
        .map(|(last, _)| last.map_or(0, |last| last + 1))
        .sum();
    let (status, _) = server.stop(libc::SIGINT);
    assert_eq!(status.code(), Some(0));
    let size = std::fs::metadata(&state).expect("state file").len();
    assert!(
        size < 32 * 1024,
        "{acked} updates left a {size}-byte log: no compaction"
    );
}

#[test]
fn a_compaction_left_half_done_is_cleaned_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = start_on(&state, &[]);
    server.request_text("a: 1");
    server.request_text("b: 2");
    server.stop(libc::SIGKILL);
    let aside = dir.path().join("board.log.compact");
    std::fs::write(&aside, b"SBLOG01\n\x10\x00half a snapshot").expect("write");

    let again = start_on(&state, &[]);
    assert_eq!(again.request_text("_:"), "- a: 1\n- b: 2\n");
    let warning = again.stderr.next("the warning");
    assert!(warning.contains("interrupted compaction"), "{warning}");
    assert!(!aside.exists());
}

#[test]
fn a_torn_tail_is_dropped_with_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = start_on(&state, &[]);
    server.request_text("a: 1");
    server.request_text("b: 2");
    server.stop(libc::SIGINT);
    let whole = std::fs::read(&state).expect("read");
    // A crash in the middle of writing one more record.
    let mut torn = whole.clone();
    torn.extend_from_slice(&[0x1a, 0, 0, 0, 0x12, 0x34]);
    std::fs::write(&state, &torn).expect("write");

    let again = start_on(&state, &[]);
    assert_eq!(again.request_text("_:"), "- a: 1\n- b: 2\n");
    let warning = again.stderr.next("the warning");
    assert!(
        warning.starts_with("warning: dropped a torn last record")
            && warning.contains(&format!("offset {}", whole.len())),
        "{warning}"
    );
    again.stop(libc::SIGINT);
    assert_eq!(
        std::fs::read(&state).expect("read"),
        whole,
        "cut back to the whole records"
    );
}

#[test]
fn a_flipped_byte_in_the_middle_is_refused_then_repaired() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let path = state.to_str().expect("UTF-8");
    let server = start_on(&state, &[]);
    for request in ["a: 1", "b: 2", "c: 3"] {
        server.request_text(request);
    }
    server.stop(libc::SIGINT);
    let mut data = std::fs::read(&state).expect("read");
    let b = data
        .windows(4)
        .position(|w| w == b"b: 2")
        .expect("b's record");
    data[b + 3] ^= 0x01; // "2" becomes "3": still text, wrong checksum
    std::fs::write(&state, &data).expect("write");

    let (code, stdout, stderr) = run_to_exit(&["0", "--state", path]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "", "nothing bound");
    assert!(
        stderr.contains(path)
            && stderr.contains("damaged at byte offset")
            && stderr.contains("--repair"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&state).expect("read"), data, "left untouched");

    let repaired = start_on(&state, &["--repair"]);
    assert_eq!(repaired.request_text("_:"), "- a: 1\n- c: 3\n");
    let moved: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("board.log.damaged-")
        })
        .collect();
    assert_eq!(moved.len(), 1, "the damaged file is kept aside");
    assert_eq!(std::fs::read(moved[0].path()).expect("read"), data);
}

#[test]
fn an_unwritable_state_path_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"").expect("write");
    let state = blocker.join("board.log");
    let (code, stdout, stderr) = run_to_exit(&["0", "--state", state.to_str().expect("UTF-8")]);
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
    let (code, stdout, stderr) = run_to_exit(&[
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
    let server = start_on(&state, &[]);
    assert_eq!(server.request_text("a: here"), "- a: here\n");
    assert!(state.exists());
}

#[test]
fn one_name_is_one_name_wherever_the_server_counts_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = start_on(&state, &["--max-entries", "1"]);
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
    let again = start_on(&state, &[]);
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
    let first = start_on(&state, &[]);
    first.request_text("a: mine");
    let (code, stdout, stderr) = run_to_exit(&["0", "--state", state.to_str().expect("UTF-8")]);
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
    let mut command = Command::new(env!("CARGO_BIN_EXE_status_server"));
    command
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_STATE_HOME")
        .stdin(std::process::Stdio::null());
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
        let (code, _, stderr) = run_to_exit(&all);
        assert_eq!(code, Some(1), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}

#[test]
fn a_state_file_deleted_or_replaced_under_load_is_written_again_and_loses_nothing() {
    for how in ["deleted", "replaced"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = state_in(&dir);
        let server = start_on(&state, &[]);
        let writers = Writers::start(&server.endpoint, 3);
        writers.wait_for_acks(200);
        match how {
            "deleted" => std::fs::remove_file(&state).expect("rm the state file"),
            _ => {
                let other = dir.path().join("other.log");
                std::fs::write(&other, status_board::storage::MAGIC).expect("another log");
                std::fs::rename(&other, &state).expect("replace the state file");
            }
        }
        let warning = server.stderr.find("deleted or replaced");
        assert!(warning.contains("wrote the board"), "{warning}");
        more_then_kill_9_and_check(server, writers, &state, 200);
    }
}

#[test]
fn a_compaction_that_fails_after_its_rename_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let mut command = Command::new(env!("CARGO_BIN_EXE_status_server"));
    command
        .args([
            "--bind",
            "tcp://127.0.0.1:*",
            "--quiet",
            "--compact-at",
            "1",
        ])
        .args(["--state", state.to_str().expect("UTF-8")])
        .env(
            status_board::storage::FAULTS_ENV,
            "fail-compaction-dir-sync",
        )
        .stdin(std::process::Stdio::null());
    let server = Server::spawn(&mut command);
    let writers = Writers::start(&server.endpoint, 3);
    let warning = server.stderr.find("injected fault");
    assert!(warning.contains("cannot fsync"), "{warning}");
    more_then_kill_9_and_check(server, writers, &state, 300);
}

/// After a fault: `more` acknowledged updates, kill -9, a restart, and every
/// acknowledged update there.
fn more_then_kill_9_and_check(server: Server, writers: Writers, state: &Path, more: u64) {
    writers.wait_for_acks(writers.acks() + more);
    let (status, _) = server.stop(libc::SIGKILL);
    assert_eq!(status.code(), None, "killed");
    let results = writers.finish();
    let again = start_on(state, &[]);
    assert_all_acknowledged_survived(&results, &again);
}

#[test]
fn preallocated_zeros_are_the_clean_end_and_a_clean_stop_trims_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = start_on(&state, &[]);
    server.request_text("a: 1");
    let grown = std::fs::metadata(&state).expect("state file").len();
    assert!(
        grown >= 1 << 20,
        "the file grows in zeroed chunks: {grown} bytes"
    );
    server.stop(libc::SIGKILL);

    let again = start_on(&state, &[]);
    assert_eq!(again.request_text("_:"), "- a: 1\n");
    let line = again.stderr.next("the state line");
    assert!(
        line.starts_with("State: "),
        "no warning for the zeros: {line}"
    );
    again.stop(libc::SIGINT);
    let data = std::fs::read(&state).expect("state file");
    assert!(
        data.len() < 100,
        "a clean stop trims the zeros: {} bytes",
        data.len()
    );
    assert_ne!(data.last(), Some(&0));
}

#[test]
fn in_memory_says_so_and_keeps_nothing() {
    let home = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_status_server"))
        .args(["--in-memory", "--bind", "tcp://127.0.0.1:*"])
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .current_dir(home.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = common::Lines::from(child.stdout.take().expect("piped"));
    let stderr = common::Lines::from(child.stderr.take().expect("piped"));
    let endpoint = common::endpoint_from_waiting_line(&stdout.next("Waiting line"));
    let line = stderr.next("state line");
    assert!(line.contains("in memory only"), "{line}");
    let reply = common::request_parts(&endpoint, &[b"a: 1"]).expect("reply");
    assert_eq!(reply, b"- a: 1\n");
    common::send_signal(&child, libc::SIGINT);
    let status = common::wait_timeout(&mut child, common::EXIT_TIMEOUT).expect("exits");
    assert_eq!(status.code(), Some(0));
    // What is true of a board kept in memory, not "all of it on disk".
    assert_eq!(
        stderr.find("Stopped:"),
        "Stopped: 1 name on the board, gone with the server (--in-memory: nothing on disk)."
    );
    let left: Vec<_> = std::fs::read_dir(home.path()).expect("list").collect();
    assert!(left.is_empty(), "nothing written: {left:?}");
}
