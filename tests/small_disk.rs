//! The server on a nearly full disk: a tmpfs of a few hundred KiB, mounted
//! for the test. Mounting needs root (CAP_SYS_ADMIN): where it cannot be
//! done these tests are reported as ignored, with the reason, and under
//! `CI=true` (whose machine can) they fail with it.

mod common;

use std::process::Command;

use common::Server;

const TESTS: [(&str, fn()); 2] = [
    (
        "a_nearly_full_disk_takes_updates_until_a_record_does_not_fit",
        a_nearly_full_disk_takes_updates_until_a_record_does_not_fit,
    ),
    (
        "a_refused_update_is_logged_as_refused",
        a_refused_update_is_logged_as_refused,
    ),
];

fn main() {
    let missing = SmallDisk::mount("64k").err();
    let tests = TESTS
        .into_iter()
        .map(|(name, test)| -> common::Needing {
            let run = move || {
                test();
                Ok(())
            };
            (name, Box::new(run))
        })
        .collect();
    common::run_needing(
        "small_disk",
        missing,
        "They need root to mount a tmpfs.",
        tests,
    )
}

/// A tmpfs of `size` mounted on a new directory, unmounted on drop; why not
/// where this machine cannot mount one (not root, no CAP_SYS_ADMIN).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "cannot mount a tmpfs: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn a_nearly_full_disk_takes_updates_until_a_record_does_not_fit() {
    let disk = SmallDisk::mount("256k").expect("a tmpfs (mounted in main already)");
    let state = disk.dir.path().join("board.log");
    // Room made now, given back later: what an operator frees when warned.
    let filler = disk.dir.path().join("filler");
    std::fs::write(&filler, vec![0u8; 64 << 10]).expect("a filler file");
    let server = Server::start_on(&state, &["--compact-at", "100000000"]);
    let status = "x".repeat(3000);
    let mut stored = 0;
    let refusal = loop {
        let reply = server.request_text(&format!("u{stored}: {status}"));
        if reply.starts_with("error: ") {
            break reply;
        }
        stored += 1;
        assert!(
            stored < 1000,
            "a 256 KiB disk took {stored} records of 3 KB"
        );
    };
    // 256 KiB less the 64 KiB filler: about 60 records of 3 KB; a 1 MiB
    // preallocation would have fit none.
    assert!(stored >= 40, "only {stored} updates fit");
    assert!(
        refusal.contains("cannot store updates right now"),
        "{refusal}"
    );
    assert_eq!(
        server.request_text("_:").lines().count(),
        stored,
        "the refused one is not on the board"
    );

    std::fs::remove_file(&filler).expect("free room");
    let reply = server.request_text(&format!("u{stored}: {status}"));
    assert!(reply.starts_with("- "), "taken once there is room: {reply}");
    let (status_code, stdout, _) = server.stop_with_output(libc::SIGINT);
    assert_eq!(status_code.code(), Some(0));
    assert_eq!(stdout, Vec::<String>::new(), "--quiet");
    let again = Server::start_on(&state, &[]);
    assert_eq!(
        again.request_text("_:").lines().count(),
        stored + 1,
        "every acknowledged update survived"
    );
}

fn a_refused_update_is_logged_as_refused() {
    let disk = SmallDisk::mount("64k").expect("a tmpfs (mounted in main already)");
    let state = disk.dir.path().join("board.log");
    let server = Server::start(&[
        "--state",
        state.to_str().expect("UTF-8"),
        "--compact-at",
        "100000000",
    ]);
    let status = "y".repeat(3000);
    let mut i = 0;
    while server
        .request_text(&format!("u{i}: {status}"))
        .starts_with("- ")
    {
        assert!(i < 100, "a 64 KiB disk took {i} records of 3 KB");
        i += 1;
    }
    let line = server.stdout.find(&format!("name: 'u{i}'"));
    assert!(line.starts_with("refused name: 'u"), "{line}");
    assert!(line.contains("could not be stored"), "{line}");
}
