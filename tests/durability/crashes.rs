//! Crashes and signals under load: kill -9 (inside a compaction too), Ctrl-C
//! with batches in flight, a state file deleted or replaced, a compaction
//! whose last step fails. Nothing acknowledged is lost.

use std::process::Stdio;
use std::time::Duration;

use crate::common::{self, FSYNC_POLICIES, Server, server_command};
use crate::state_in;
use crate::writers::{
    Writers, assert_all_acknowledged_survived, kill_9_under_load, more_then_kill_9_and_check,
    value_of, values_on, wait_until,
};

#[test]
fn sigint_then_restart_gives_the_identical_board() {
    for policy in FSYNC_POLICIES {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = state_in(&dir);
        let server = Server::start_on(&state, &["--fsync", policy]);
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

        let again = Server::start_on(&state, &["--fsync", policy]);
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

#[test]
fn kill_9_under_concurrent_writers_loses_no_acknowledged_update() {
    for policy in FSYNC_POLICIES {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = state_in(&dir);
        let server = kill_9_under_load(&state, &["--fsync", policy], 4, 400);
        // Every writer had an update acknowledged before the kill: all four are back.
        let total: usize = values_on(&server.request(b"_:")).len();
        assert_eq!(total, 4, "fsync {policy}");
    }
}

#[test]
fn sigint_under_fsync_always_load_finishes_what_is_in_hand() {
    // Batches are in flight when the signal comes: they are synced and answered,
    // the server exits 0 promptly, and every acknowledged update is there.
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = Server::start_on(&state, &["--fsync", "always"]);
    let writers = Writers::start(&server.endpoint, 8);
    writers.wait_for_acks(500);
    let (status, took) = server.stop(libc::SIGINT);
    let acked: Vec<Option<u64>> = writers.finish().into_iter().map(|(a, _)| a).collect();
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(3), "stopped in {took:?}");

    let again = Server::start_on(&state, &[]);
    let restored = values_on(&again.request(b"_:"));
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
    for policy in FSYNC_POLICIES {
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
        let mut command = server_command();
        command
            .args(["--bind", "tcp://127.0.0.1:*"])
            .args(args)
            .env(
                status_board::storage::FAULTS_ENV,
                "hold-compaction-ms=60000",
            )
            .stdin(Stdio::null());
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

        let again = Server::start_on(&state, &["--fsync", policy]);
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
    let server = Server::start_on(&state, &["--fsync", "always", "--compact-at", "16384"]);
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
    let again = Server::start_on(&state, &[]);
    assert_eq!(again.request_text("_:"), "- a: update 1999\n");
}

#[test]
fn compaction_happens_under_concurrent_fsync_always_load() {
    // Batches are nearly always in flight; compaction must still find its moment.
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = Server::start_on(&state, &["--fsync", "always", "--compact-at", "8192"]);
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
fn a_state_file_deleted_or_replaced_under_load_is_written_again_and_loses_nothing() {
    for how in ["deleted", "replaced"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = state_in(&dir);
        let server = Server::start_on(&state, &[]);
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
    let mut command = server_command();
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
        .stdin(Stdio::null());
    let server = Server::spawn(&mut command);
    let writers = Writers::start(&server.endpoint, 3);
    let warning = server.stderr.find("injected fault");
    assert!(warning.contains("cannot fsync"), "{warning}");
    more_then_kill_9_and_check(server, writers, &state, 300);
}
