//! A damaged state file: a compaction left half done, a torn last record, a
//! flipped byte, the zeros of a preallocated end.

use crate::common::{Server, run_server};
use crate::state_in;

#[test]
fn a_compaction_left_half_done_is_cleaned_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = Server::start_on(&state, &[]);
    server.request_text("a: 1");
    server.request_text("b: 2");
    server.stop(libc::SIGKILL);
    let aside = dir.path().join("board.log.compact");
    let mut half = status_board::storage::MAGIC.to_vec();
    half.extend_from_slice(b"\x10\x00half a snapshot");
    std::fs::write(&aside, half).expect("write");

    let again = Server::start_on(&state, &[]);
    assert_eq!(again.request_text("_:"), "- a: 1\n- b: 2\n");
    let warning = again.stderr.next("the warning");
    assert!(warning.contains("interrupted compaction"), "{warning}");
    assert!(!aside.exists());
}

#[test]
fn a_torn_tail_is_dropped_with_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = Server::start_on(&state, &[]);
    server.request_text("a: 1");
    server.request_text("b: 2");
    server.stop(libc::SIGINT);
    let whole = std::fs::read(&state).expect("read");
    // A crash in the middle of writing one more record.
    let mut torn = whole.clone();
    torn.extend_from_slice(&[0x1a, 0, 0, 0, 0x12, 0x34]);
    std::fs::write(&state, &torn).expect("write");

    let again = Server::start_on(&state, &[]);
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
    let server = Server::start_on(&state, &[]);
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

    let (code, stdout, stderr) = run_server(&["0", "--state", path]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "", "nothing bound");
    assert!(
        stderr.contains(path)
            && stderr.contains("damaged at byte offset")
            && stderr.contains("--repair"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&state).expect("read"), data, "left untouched");

    let repaired = Server::start_on(&state, &["--repair"]);
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
fn preallocated_zeros_are_the_clean_end_and_a_clean_stop_trims_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = state_in(&dir);
    let server = Server::start_on(&state, &[]);
    server.request_text("a: 1");
    let grown = std::fs::metadata(&state).expect("state file").len();
    assert!(
        grown >= 1 << 20,
        "the file grows in zeroed chunks: {grown} bytes"
    );
    server.stop(libc::SIGKILL);

    let again = Server::start_on(&state, &[]);
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
