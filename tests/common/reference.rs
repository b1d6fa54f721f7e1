//! The Python original, extracted from the reference at test time, and its
//! server on a free port.

#![allow(dead_code, reason = "each test crate uses a few of these items")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;

use super::needing::under_ci;
use super::process::{Lines, Running};
use super::status_server::free_port;

/// The original programs, written out of `shared/reference/status_server.md`.
pub struct Reference {
    pub dir: PathBuf,
    pub server: PathBuf,
    pub client: PathBuf,
}

/// Where the reference lives: `STATUS_BOARD_REFERENCE`, or `../shared/reference/` beside the repo.
pub fn reference_path() -> PathBuf {
    std::env::var_os("STATUS_BOARD_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/status_server.md")
        })
}

/// Extracts the Python server and client, or says why it cannot (for the
/// benchmark harness, which leaves the original's rows out).
///
/// Under `CI=true` a missing part is a failure; elsewhere it is said loudly.
pub fn reference_or_skip(test: &str) -> Option<Reference> {
    match find_reference() {
        Ok(reference) => Some(reference),
        Err(why) if under_ci() => {
            panic!("{test}: cannot run the Python original under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("\n!!!!! SKIPPED {test}: {why} !!!!!\n");
            None
        }
    }
}

/// How to give the tests the original: printed when it is missing.
pub const REFERENCE_HELP: &str = "They need python3 with pyzmq (on a Debian system Python: \
python3 -m venv .venv && .venv/bin/pip install pyzmq, then run with PATH=$PWD/.venv/bin:$PATH) \
and the reference shared/reference/status_server.md beside this repository \
(or STATUS_BOARD_REFERENCE=/path/to/status_server.md). See README.md, Development.";

/// The Python server and client extracted from the reference, or why they cannot be.
pub fn find_reference() -> Result<Reference, String> {
    let path = reference_path();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read the reference {}: {e}", path.display()))?;
    let blocks = python_blocks(&text);
    let [server, client] = blocks.as_slice() else {
        return Err(format!(
            "expected 2 python blocks in {}, found {}",
            path.display(),
            blocks.len()
        ));
    };
    let probe = Command::new("python3")
        .args(["-c", "import zmq"])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !probe.status.success() {
        // The traceback's last line says why: "No module named 'zmq'".
        let stderr = String::from_utf8_lossy(&probe.stderr);
        let why = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!("python3 cannot import zmq: {}", why.trim()));
    }
    let dir = std::env::temp_dir().join(format!(
        "status-board-reference-{}-{:?}",
        std::process::id(),
        thread::current().id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |name: &str, code: &str| -> Result<PathBuf, String> {
        let file = dir.join(name);
        std::fs::write(&file, code).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        Ok(file)
    };
    Ok(Reference {
        server: write("status_server.py", server)?,
        client: write("status_client.py", client)?,
        dir,
    })
}

/// The bodies of the ```` ~~~python ```` blocks, in order.
fn python_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim() == "~~~python" || line.trim() == "```python" => {
                current = Some(String::new())
            }
            Some(code) if line.trim() == "~~~" || line.trim() == "```" => {
                blocks.push(std::mem::take(code));
                current = None;
            }
            Some(code) => {
                code.push_str(line);
                code.push('\n');
            }
            None => {}
        }
    }
    blocks
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The original Python server on a free port, killed on drop.
pub struct PythonServer {
    pub child: Running,
    pub port: u16,
    pub endpoint: String,
    pub stdout: Lines,
}

impl PythonServer {
    /// Starts it and waits for its first line, which it prints once bound.
    pub fn start(reference: &Reference) -> PythonServer {
        let port = free_port();
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(&reference.server)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the Python server");
        let stdout = Lines::from(child.stdout.take().expect("piped"));
        let first = stdout.next("the Python server's first line");
        assert_eq!(
            first,
            format!("Waiting for clients on port '{port}' on host '127.0.0.1'.")
        );
        PythonServer {
            child: Running(child),
            port,
            endpoint: format!("tcp://127.0.0.1:{port}"),
            stdout,
        }
    }
}
