//! The systemd unit in `contrib/`: `systemd-analyze verify` accepts it, and
//! the server starts with its command line. Where systemd-analyze is missing
//! the test is reported as ignored, with the reason (under `CI=true`, failed).

mod common;

use std::process::Command;

fn main() {
    let missing = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .err()
        .map(|e| format!("cannot run systemd-analyze: {e}"));
    let test: common::Needing = (
        "the_systemd_unit_verifies_and_its_command_line_serves",
        Box::new(the_systemd_unit_verifies_and_its_command_line_serves),
    );
    common::run_needing(
        "systemd",
        missing,
        "It needs systemd-analyze (apt-get install systemd).",
        vec![test],
    )
}

fn the_systemd_unit_verifies_and_its_command_line_serves() -> Result<(), String> {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/status-board.service"
    ))
    .map_err(|e| format!("cannot read the unit: {e}"))?;
    let binary = env!("CARGO_BIN_EXE_status_server");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let local = unit.replace("/usr/local/bin/status_server", binary);
    let path = dir.path().join("status-board.service");
    std::fs::write(&path, &local).map_err(|e| e.to_string())?;
    // --man=no: the man page is installed by hand (README), not here.
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .map_err(|e| e.to_string())?;
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The unit's own arguments, with the directory systemd would make, on a free port.
    let exec = local
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let state_dir = dir.path().join("state");
    std::fs::create_dir(&state_dir).map_err(|e| e.to_string())?;
    let exec = exec.replace("${STATE_DIRECTORY}", state_dir.to_str().expect("UTF-8"));
    let mut words = exec.split_whitespace();
    let program = words.next().expect("a program");
    assert_eq!(program, binary);
    let args: Vec<String> = words
        .map(|w| match w.starts_with("tcp://") {
            true => "tcp://127.0.0.1:*".to_owned(),
            false => w.to_owned(),
        })
        .collect();
    let mut command = Command::new(program);
    command.args(&args).stdin(std::process::Stdio::null());
    let server = common::Server::spawn(&mut command);
    assert_eq!(server.request_text("unit: up"), "- unit: up\n");
    let (status, _) = server.stop(libc::SIGTERM);
    assert_eq!(status.code(), Some(0));
    assert!(
        state_dir.join("board.log").exists(),
        "the state went to StateDirectory"
    );
    Ok(())
}
