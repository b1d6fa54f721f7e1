//! The state file against other local users and planted links, with the real
//! server: modes under any umask, symbolic links refused and never followed.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{FSYNC_POLICIES, Server, server_command};

/// The permission bits of what `path` names (not following a link).
fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

/// The server on `state` (quiet, on a free port) with `umask` in effect.
fn start_with_umask(state: &Path, umask: libc::mode_t, extra: &[&str]) -> Server {
    let mut command = server_command();
    command
        .args(["--bind", "tcp://127.0.0.1:*", "--state"])
        .arg(state);
    spawn_with_umask(&mut command, umask, extra)
}

/// The server (quiet) as `command` says, with `extra` arguments and `umask` in effect.
fn spawn_with_umask(command: &mut Command, umask: libc::mode_t, extra: &[&str]) -> Server {
    command.arg("--quiet").args(extra).stdin(Stdio::null());
    // SAFETY: umask(2) is async-signal-safe and touches no memory.
    unsafe {
        command.pre_exec(move || {
            libc::umask(umask);
            Ok(())
        });
    }
    Server::spawn(command)
}

/// Asserts a start on `state` was refused with exactly one line saying `says`.
fn assert_refused(state: &Path, says: &str) {
    let path = state.to_str().expect("UTF-8 path");
    let (code, stdout, stderr) =
        common::run_server(&["--bind", "tcp://127.0.0.1:*", "--state", path]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "", "nothing served");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(says), "{stderr}");
}

/// What a link at `path` is told: the refusal line names it.
fn link_refusal(path: &Path) -> String {
    format!(
        "{} is a symbolic link; refusing to follow it",
        path.display()
    )
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

fn inode(path: &Path) -> u64 {
    fs::symlink_metadata(path).expect("the state file").ino()
}

#[test]
fn the_state_is_0600_and_new_directories_0700_under_any_umask() {
    for umask in [0, 0o077, 0o777] {
        let top = tempfile::tempdir().expect("temp dir");
        // A directory that exists is the operator's: left as it is.
        fs::set_permissions(top.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        // Only the default location's directories are made (a --state
        // path's must exist): $XDG_STATE_HOME and what it needs.
        let state_home = top.path().join("new/deeper");
        let port = common::free_port();
        let start = |extra: &[&str]| {
            let mut command = server_command();
            command
                .arg(port.to_string())
                .env("XDG_STATE_HOME", &state_home);
            spawn_with_umask(&mut command, umask, extra)
        };
        let state = state_home.join(format!("status-board/tcp-127.0.0.1-{port}.log"));
        let server = start(&["--compact-at", "1"]);
        assert_eq!(server.request_text("a: 0"), "- a: 0\n");
        let what = format!("umask {umask:04o}");
        assert_eq!(mode(top.path()), 0o755, "{what}: the existing directory");
        for made in ["new", "new/deeper", "new/deeper/status-board"] {
            assert_eq!(mode(&top.path().join(made)), 0o700, "{what}: {made}");
        }
        assert_eq!(mode(&state), 0o600, "{what}: the state file");
        assert_eq!(mode(&sibling(&state, ".lock")), 0o600, "{what}: the lock");
        // A compaction's new file: the state path names another inode then.
        let first = inode(&state);
        let mut i = 1;
        while inode(&state) == first {
            assert!(i < 100, "{what}: no compaction after {i} updates");
            let update = format!("a: {i}");
            assert_eq!(server.request_text(&update), format!("- {update}\n"));
            i += 1;
        }
        assert_eq!(mode(&state), 0o600, "{what}: the compacted file");
        let (status, _) = server.stop(libc::SIGINT);
        assert_eq!(status.code(), Some(0), "{what}");
        // Usable again under the same umask, by its --state path too.
        let again = start_with_umask(&state, umask, &[]);
        assert_eq!(
            again.request_text("_:"),
            format!("- a: {}\n", i - 1),
            "{what}"
        );
    }
}

#[test]
fn a_state_file_open_to_others_is_tightened_with_one_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("board.log");
    let server = Server::start_on(&state, &[]);
    server.request_text("secret: only for us");
    server.stop(libc::SIGINT);
    // As an older version left it.
    fs::set_permissions(&state, fs::Permissions::from_mode(0o644)).expect("chmod");

    let again = Server::start_on(&state, &[]);
    let warning = again.stderr.next("the warning");
    assert_eq!(
        warning,
        format!(
            "warning: {} had mode 0644; set it to 0600, so that no other user reads or writes the board",
            state.display()
        )
    );
    assert!(again.stderr.next("the state line").starts_with("State: "));
    assert_eq!(mode(&state), 0o600);
    assert_eq!(again.request_text("_:"), "- secret: only for us\n");
    again.stop(libc::SIGINT);

    let third = Server::start_on(&state, &[]);
    let line = third.stderr.next("the state line");
    assert!(line.starts_with("State: "), "no warning once 0600: {line}");
}

#[test]
fn a_link_at_the_state_path_or_its_lock_is_refused_and_never_followed() {
    for suffix in ["", ".lock"] {
        for dangling in [true, false] {
            let dir = tempfile::tempdir().expect("temp dir");
            let state = dir.path().join("board.log");
            let link = sibling(&state, suffix);
            let target = dir.path().join("victim");
            if !dangling {
                fs::write(&target, b"precious\n").expect("the victim");
                fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).expect("chmod");
            }
            symlink(&target, &link).expect("plant the link");
            assert_refused(&state, &link_refusal(&link));
            if dangling {
                assert!(
                    fs::symlink_metadata(&target).is_err(),
                    "{suffix}: the link's target was not created"
                );
            } else {
                assert_eq!(fs::read(&target).expect("victim"), b"precious\n");
                assert_eq!(mode(&target), 0o644, "{suffix}: the victim's mode is kept");
            }
            assert!(
                fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()),
                "{suffix}: the link is left for the operator to see"
            );
        }
    }
}

#[test]
fn a_fifo_at_the_state_path_is_refused_without_hanging() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("board.log");
    let name = std::ffi::CString::new(state.to_str().expect("UTF-8")).expect("no NUL");
    // SAFETY: mkfifo(3) reads the NUL-terminated path it is given.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");
    assert_refused(
        &state,
        &format!("{} is not a regular file; refusing it", state.display()),
    );
}

#[test]
fn a_state_directory_that_is_a_link_is_followed() {
    // As /var/lib/status-board -> /srv/board set up by root: only a path's
    // last component is never followed.
    let dir = tempfile::tempdir().expect("temp dir");
    let real = dir.path().join("srv-board");
    fs::create_dir(&real).expect("the real directory");
    let linked = dir.path().join("status-board");
    symlink(&real, &linked).expect("the directory link");
    let state = linked.join("board.log");
    let server = Server::start_on(&state, &[]);
    server.request_text("a: kept");
    server.stop(libc::SIGINT);
    assert_eq!(mode(&real.join("board.log")), 0o600);
    let again = Server::start_on(&state, &[]);
    assert_eq!(again.request_text("_:"), "- a: kept\n");
}

#[test]
fn a_link_planted_at_the_compaction_file_is_refused_and_nothing_is_lost() {
    for policy in FSYNC_POLICIES {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("board.log");
        let aside = sibling(&state, ".compact");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious\n").expect("the victim");
        let server = Server::start_on(&state, &["--fsync", policy, "--compact-at", "4096"]);
        // Before the log is anywhere near 4 KiB: no compaction yet.
        symlink(&victim, &aside).expect("plant the link");
        // About 35 bytes a record: 200 pass 4 KiB once (not 8 KiB, the retry).
        for i in 0..200 {
            let board = server.request_text(&format!("n{}: update {i}", i % 5));
            assert!(
                board.contains(&format!("update {i}\n")),
                "{policy}: {board}"
            );
        }
        let warning = server.stderr.find("symbolic link");
        assert_eq!(
            warning,
            format!(
                "warning: cannot compact {} (it stays in use; compaction is tried again when it has doubled): {}",
                state.display(),
                link_refusal(&aside)
            ),
            "{policy}"
        );
        assert_eq!(
            fs::read(&victim).expect("victim"),
            b"precious\n",
            "{policy}"
        );
        let after = server.request_text("n0: after the refusal");
        assert!(
            after.contains("- n0: after the refusal\n"),
            "{policy}: {after}"
        );
        let (status, _) = server.stop(libc::SIGKILL);
        assert_eq!(status.code(), None, "{policy}: killed");

        // The link is still there: a start refuses it, as it refuses one at the state path.
        assert_refused(&state, &link_refusal(&aside));
        assert_eq!(
            fs::read(&victim).expect("victim"),
            b"precious\n",
            "{policy}"
        );
        fs::remove_file(&aside).expect("the operator removes the link");
        let again = Server::start_on(&state, &[]);
        assert_eq!(
            again.request_text("_:"),
            after,
            "{policy}: every acknowledged update"
        );
    }
}

#[test]
fn a_link_planted_at_the_state_path_while_serving_is_replaced_not_followed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("board.log");
    let victim = dir.path().join("victim");
    fs::write(&victim, b"precious\n").expect("the victim");
    let server = Server::start_on(&state, &[]);
    server.request_text("a: 1");
    // Swapped in whole, as rename(2) does: the path names a link from now on.
    let planted = dir.path().join("planted");
    symlink(&victim, &planted).expect("the link");
    fs::rename(&planted, &state).expect("plant it at the state path");
    let board = server.request_text("b: 2");
    assert_eq!(board, "- a: 1\n- b: 2\n");
    let warning = server.stderr.find("deleted or replaced");
    assert!(warning.contains("wrote the board"), "{warning}");
    assert_eq!(fs::read(&victim).expect("victim"), b"precious\n");
    let meta = fs::symlink_metadata(&state).expect("the state path");
    assert!(meta.is_file(), "the link itself was replaced by the board");
    assert_eq!(mode(&state), 0o600);
    server.stop(libc::SIGKILL);
    let again = Server::start_on(&state, &[]);
    assert_eq!(again.request_text("_:"), board);
}
