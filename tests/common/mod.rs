//! Helpers shared by the integration tests: the real binaries, real sockets.
#![allow(dead_code)] // each test crate uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// Generous: these bound a hang, they do not measure speed.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Lines a child writes to one stream, read on a thread so it never blocks.
pub struct Lines(Receiver<String>);

impl Lines {
    pub fn from(stream: impl Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines(rx)
    }

    /// The next line, or a panic naming what was awaited.
    pub fn next(&self, what: &str) -> String {
        self.0
            .recv_timeout(REPLY_TIMEOUT)
            .unwrap_or_else(|_| panic!("no line from the process while waiting for {what}"))
    }

    /// Every line written so far, waiting `settle` for stragglers.
    pub fn drain(&self, settle: Duration) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(line) = self.0.recv_timeout(settle) {
            lines.push(line);
        }
        lines
    }
}

/// Spawns `command` with stdout and stderr piped, each read as lines on a thread.
pub fn spawn_piped(command: &mut Command) -> (Child, Lines, Lines) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let stdout = Lines::from(child.stdout.take().expect("piped stdout"));
    let stderr = Lines::from(child.stderr.take().expect("piped stderr"));
    (child, stdout, stderr)
}

/// A running `status_server` on a free loopback port, killed on drop.
pub struct Server {
    pub child: Child,
    pub endpoint: String,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Server {
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
        let (child, stdout, stderr) = spawn_piped(
            Command::new(env!("CARGO_BIN_EXE_status_server"))
                .args(args)
                .stdin(Stdio::null()),
        );
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
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("endpoint ends in a port")
    }

    /// Sends one frame on a fresh REQ socket and returns the reply.
    pub fn request(&self, frame: &[u8]) -> Vec<u8> {
        request_parts(&self.endpoint, &[frame]).expect("a reply from the server")
    }

    /// The reply as text.
    pub fn request_text(&self, frame: &str) -> String {
        String::from_utf8(self.request(frame.as_bytes())).expect("UTF-8 reply")
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

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tcp://HOST:PORT` from either form of the server's first line.
pub fn endpoint_from_waiting_line(line: &str) -> String {
    if let Some(rest) = line.strip_prefix("Waiting for clients on port '") {
        let (port, rest) = rest.split_once('\'').expect("quoted port");
        let host = rest
            .strip_prefix(" on host '")
            .and_then(|h| h.strip_suffix("'."))
            .expect("quoted host");
        return status_board::protocol::tcp_endpoint(host, port.parse().expect("numeric port"));
    }
    line.strip_prefix("Waiting for clients on '")
        .and_then(|l| l.strip_suffix("'."))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

/// Sends a (possibly multipart) request on a fresh REQ socket; `None` if no reply in time.
pub fn request_parts_within(endpoint: &str, parts: &[&[u8]], timeout: Duration) -> Option<Vec<u8>> {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::REQ).expect("REQ socket");
    socket.set_linger(0).expect("LINGER");
    socket
        .set_rcvtimeo(i32::try_from(timeout.as_millis()).expect("timeout fits"))
        .expect("RCVTIMEO");
    socket.connect(endpoint).expect("connect");
    socket
        .send_multipart(parts.iter().copied(), 0)
        .expect("send");
    match socket.recv_bytes(0) {
        Ok(reply) => {
            assert!(
                !socket.get_rcvmore().expect("RCVMORE"),
                "reply must be one frame"
            );
            Some(reply)
        }
        Err(zmq::Error::EAGAIN) => None,
        Err(e) => panic!("receive failed: {e}"),
    }
}

pub fn request_parts(endpoint: &str, parts: &[&[u8]]) -> Option<Vec<u8>> {
    request_parts_within(endpoint, parts, REPLY_TIMEOUT)
}

pub fn send_signal(child: &Child, signal: i32) {
    let pid = i32::try_from(child.id()).expect("pid fits");
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

/// Waits for a child to exit; `None` (child killed) if it takes longer than `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a command with `stdin` as input; panics if it outlives `timeout`.
pub fn run_with_input(command: &mut Command, stdin: &str, timeout: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_owned();
    thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let stdout = read_all_on_thread(child.stdout.take().expect("piped stdout"));
    let stderr = read_all_on_thread(child.stderr.take().expect("piped stderr"));
    let status = wait_timeout(&mut child, timeout)
        .unwrap_or_else(|| panic!("{command:?} did not finish within {timeout:?}"));
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn read_all_on_thread(mut stream: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf);
        buf
    })
}

/// Peak resident memory of a process in KiB, from /proc (Linux).
pub fn peak_rss_kib(child: &Child) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

// ---- the Python original, extracted from the reference at test time ----

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

/// Extracts the Python server and client, or says why it cannot.
///
/// Under `CI=true` a missing part fails the test; elsewhere it is skipped loudly.
pub fn reference_or_skip(test: &str) -> Option<Reference> {
    match find_reference() {
        Ok(reference) => Some(reference),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: cannot run the Python original under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("\n!!!!! SKIPPED {test}: {why} !!!!!\n");
            None
        }
    }
}

fn find_reference() -> Result<Reference, String> {
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
        return Err(format!(
            "python3 cannot import zmq (pip install pyzmq): {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        ));
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

/// A loopback port that was free a moment ago, for programs that take no `*`.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The original Python server on a free port, killed on drop.
pub struct PythonServer {
    pub child: Child,
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
            child,
            port,
            endpoint: format!("tcp://127.0.0.1:{port}"),
            stdout,
        }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of a port that counts the bytes each way: what a poll
/// costs on the wire, ZeroMQ framing included.
pub struct CountingProxy {
    /// Where clients connect instead of the server.
    pub endpoint: String,
    /// Client to server, server to client.
    bytes: std::sync::Arc<[std::sync::atomic::AtomicU64; 2]>,
}

impl CountingProxy {
    /// A proxy to `127.0.0.1:target_port` on a free loopback port.
    pub fn start(target_port: u16) -> CountingProxy {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("address").port();
        let bytes = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let counters = Arc::clone(&bytes);
        thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target_port)) else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                for (direction, from, to) in [(0, &client, &server), (1, &server, &client)] {
                    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                        return;
                    };
                    let counters = Arc::clone(&counters);
                    thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut buffer = vec![0; 64 * 1024];
                        while let Ok(n) = from.read(&mut buffer) {
                            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                            counters[direction].fetch_add(n as u64, Ordering::Relaxed);
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        CountingProxy {
            endpoint: format!("tcp://127.0.0.1:{port}"),
            bytes,
        }
    }

    /// Bytes copied so far, both ways.
    pub fn total(&self) -> u64 {
        use std::sync::atomic::Ordering;
        self.bytes.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Bytes copied both ways, once nothing has moved for 100 ms (a client
    /// that has exited: its last bytes are still being copied).
    pub fn total_when_idle(&self) -> u64 {
        let mut last = self.total();
        loop {
            thread::sleep(Duration::from_millis(100));
            let now = self.total();
            if now == last {
                return now;
            }
            last = now;
        }
    }
}

/// Wire bytes, both ways, of the real watcher polling the server on `port`
/// every 10 ms until it has printed `count` boards (as JSON), then exiting.
pub fn polling_watcher_bytes(port: u16, count: u64) -> u64 {
    let proxy = CountingProxy::start(port);
    let count_text = count.to_string();
    let output = run_with_input(
        Command::new(env!("CARGO_BIN_EXE_status_client")).args([
            "_",
            "--endpoint",
            &proxy.endpoint,
            "--json",
            "--interval",
            "0.01",
            "--count",
            &count_text,
        ]),
        "",
        EXIT_TIMEOUT,
    );
    assert!(output.status.success(), "{output:?}");
    let boards = String::from_utf8_lossy(&output.stdout).lines().count();
    assert_eq!(boards as u64, count, "{output:?}");
    proxy.total_when_idle()
}
