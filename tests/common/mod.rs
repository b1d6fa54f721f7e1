//! Helpers shared by the integration tests: the real binaries, real sockets.
#![allow(dead_code)] // each test crate uses a different subset

pub mod zmtp;

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

    /// Takes the stream over, leaving one that has ended.
    fn take(&mut self) -> Receiver<String> {
        std::mem::replace(&mut self.0, mpsc::channel().1)
    }

    /// The next line, or a panic naming what was awaited.
    pub fn next(&self, what: &str) -> String {
        match self.0.recv_timeout(REPLY_TIMEOUT) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("no line from the process within {REPLY_TIMEOUT:?} while waiting for {what}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the process closed this stream (has it exited?) while waiting for {what}")
            }
        }
    }

    /// Every line until the stream ends (the process has exited or closed it).
    pub fn rest(&self) -> Vec<String> {
        let deadline = Instant::now() + EXIT_TIMEOUT;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("the stream did not end within {EXIT_TIMEOUT:?}: {lines:?}")
                }
            }
        }
    }

    /// The first line from now on that contains `part`; panics if none comes.
    pub fn find(&self, part: &str) -> String {
        loop {
            let line = self.next(part);
            if line.contains(part) {
                return line;
            }
        }
    }

    /// Lines until one equals `wanted`; panics if it never comes.
    pub fn until(&self, wanted: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = self.next(wanted);
            let done = line == wanted;
            seen.push(line);
            if done {
                return seen;
            }
        }
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

/// The HTTP address `status_web` says it serves on: it prints
/// `status_web: serving http://ADDRESS/ …` once it listens.
pub fn web_address(stdout: &Lines) -> String {
    let line = stdout.find("status_web: serving http://");
    line.split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("an address in the serving line")
        .to_owned()
}

/// A running `status_server` on a free loopback port, killed on drop.
pub struct Server {
    pub child: Child,
    pub endpoint: String,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Server {
    /// Starts the server on `state`, quiet, with `extra` arguments.
    pub fn start_on(state: &Path, extra: &[&str]) -> Server {
        let mut args = vec![
            "--state",
            state.to_str().expect("UTF-8 temp path"),
            "--quiet",
        ];
        args.extend_from_slice(extra);
        Server::start(&args)
    }

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
        Server::spawn(
            Command::new(env!("CARGO_BIN_EXE_status_server"))
                .args(args)
                .stdin(Stdio::null()),
        )
    }

    /// Spawns the server `command`; its first line names the endpoint.
    pub fn spawn(command: &mut Command) -> Server {
        let (child, stdout, stderr) = spawn_piped(command);
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
        request(&self.endpoint, frame)
    }

    /// The reply as text.
    pub fn request_text(&self, frame: &str) -> String {
        request_text(&self.endpoint, frame)
    }

    /// The reply as text, logged in as `user` (a server with `--auth`).
    pub fn request_text_as(&self, user: &str, password: &str, frame: &str) -> String {
        let reply = request_parts_as(
            Some((user, password)),
            &self.endpoint,
            &[frame.as_bytes()],
            REPLY_TIMEOUT,
        )
        .expect("a reply from the server");
        String::from_utf8(reply).expect("UTF-8 reply")
    }

    /// Sends a signal, waits for the exit, and returns the exit status and
    /// the stdout and stderr lines not read yet, up to the end.
    pub fn stop_with_output(mut self, signal: i32) -> (ExitStatus, Vec<String>, Vec<String>) {
        let (stdout, stderr) = (Lines(self.stdout.take()), Lines(self.stderr.take()));
        let (status, _) = self.stop(signal);
        (status, stdout.rest(), stderr.rest())
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
        return status_board::endpoint::tcp_endpoint(host, port.parse().expect("numeric port"));
    }
    line.strip_prefix("Waiting for clients on '")
        .and_then(|l| l.strip_suffix("'."))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}

/// Sends a (possibly multipart) request on a fresh REQ socket; `None` if no reply in time.
pub fn request_parts_within(endpoint: &str, parts: &[&[u8]], timeout: Duration) -> Option<Vec<u8>> {
    request_parts_as(None, endpoint, parts, timeout)
}

/// [`request_parts_within`], logged in as `(user, password)` if given.
pub fn request_parts_as(
    login: Option<(&str, &str)>,
    endpoint: &str,
    parts: &[&[u8]],
    timeout: Duration,
) -> Option<Vec<u8>> {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::REQ).expect("REQ socket");
    if let Some((user, password)) = login {
        socket.set_plain_username(Some(user)).expect("user");
        socket.set_plain_password(Some(password)).expect("password");
    }
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

/// Sends one frame on a fresh REQ socket and returns the reply.
pub fn request(endpoint: &str, frame: &[u8]) -> Vec<u8> {
    request_parts(endpoint, &[frame]).expect("a reply from the server")
}

/// The reply as text.
pub fn request_text(endpoint: &str, frame: &str) -> String {
    String::from_utf8(request(endpoint, frame.as_bytes())).expect("UTF-8 reply")
}

/// The server's snapshot (`_:@board`): the board with times, seq and publisher.
pub fn snapshot(endpoint: &str) -> status_board::protocol::Snapshot {
    use status_board::protocol::{ExtendedReply, parse_extended_reply};
    match parse_extended_reply(&request(endpoint, b"_:@board")) {
        Ok(ExtendedReply::Snapshot(snapshot)) => snapshot,
        other => panic!("not a snapshot: {other:?}"),
    }
}

// ---- suites whose real part may be missing ----

/// A test of a suite that needs a part this machine may not have.
pub type Needing = (&'static str, Box<dyn FnOnce() -> Result<(), String> + Send>);

/// Runs `tests` with libtest-mimic (the harness of the suites that decide at
/// run time). When their real part is `missing`, they are reported as
/// ignored and the reason is printed once; under `CI=true` they fail with it.
pub fn run_needing(suite: &str, missing: Option<String>, help: &str, tests: Vec<Needing>) -> ! {
    let arguments = libtest_mimic::Arguments::from_args();
    let required = std::env::var("CI").is_ok_and(|v| v == "true");
    if let Some(why) = &missing {
        let what = if required {
            "FAIL (CI=true)"
        } else {
            "are ignored"
        };
        eprintln!("\n{suite}: these tests {what}: {why}\n{help}\n");
    }
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            let ignored = missing.is_some() && !required;
            let missing = missing.clone();
            libtest_mimic::Trial::test(name, move || match missing {
                Some(why) => Err(why.into()),
                None => test().map_err(Into::into),
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    libtest_mimic::run(&arguments, trials).exit()
}

// ---- the server loop in this process ----

/// The server loop on a free loopback port in this process, with a shutdown
/// trigger: for tests that need the loop, not the process. Stopped on drop.
pub struct InProcess {
    pub endpoint: String,
    shutdown: status_board::shutdown::Shutdown,
    thread: Option<thread::JoinHandle<Result<(), String>>>,
}

/// Starts the server loop in memory on `tcp://127.0.0.1:*`, `configure`d first.
pub fn start_server(configure: impl FnOnce(&mut status_board::server::Config)) -> InProcess {
    use status_board::server::{Config, Server};
    let mut config = Config::in_memory(vec!["tcp://127.0.0.1:*".into()]);
    configure(&mut config);
    let server = Server::open(config).expect("the server opens and binds");
    let endpoint = server.endpoints()[0].clone();
    let shutdown = status_board::shutdown::Shutdown::new();
    let trigger = shutdown.clone();
    let thread = thread::spawn(move || {
        server
            .serve(&trigger)
            .map_err(|e| status_board::error_chain(&e))
    });
    InProcess {
        endpoint,
        shutdown,
        thread: Some(thread),
    }
}

impl InProcess {
    pub fn request_text(&self, frame: &str) -> String {
        request_text(&self.endpoint, frame)
    }

    /// Stops the loop and checks it ended cleanly.
    pub fn stop(mut self) {
        self.shutdown.trigger();
        let thread = self.thread.take().expect("running");
        assert_eq!(thread.join().expect("the loop did not panic"), Ok(()));
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---- logins (--auth) ----

/// Every test user's password.
pub const PASSWORD: &str = "correct horse";

/// A users file in a private temporary directory.
pub struct UsersFile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl UsersFile {
    /// `lines` of `NAME[:RIGHTS]`, each given [`PASSWORD`], mode 0600.
    pub fn new(lines: &[&str]) -> UsersFile {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("users");
        let file = UsersFile { _dir: dir, path };
        file.write(lines);
        file
    }

    pub fn write(&self, lines: &[&str]) {
        let hash = status_board::server::auth::hash_password(PASSWORD).expect("a hash");
        let text: String = lines
            .iter()
            .map(|line| match line.split_once(':') {
                Some((name, rights)) => format!("{name}:{hash}:{rights}\n"),
                None => format!("{line}:{hash}\n"),
            })
            .collect();
        write_private(&self.path, &text);
    }

    pub fn path(&self) -> &str {
        self.path.to_str().expect("UTF-8 path")
    }
}

/// Writes `text` to `path` readable by its owner only.
pub fn write_private(path: &Path, text: &str) {
    // Written aside and renamed: a reload never sees half a file.
    let aside = path.with_extension("new");
    std::fs::write(&aside, text).expect("write the users file");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::rename(&aside, path).expect("rename the users file");
}

// ---- the client binary ----

/// `status_client` with these arguments, and no login from the environment
/// (no `STATUS_BOARD_*` variables, no password file) unless a test adds one.
pub fn client(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_status_client"));
    command
        .args(args)
        .env_remove("STATUS_BOARD_USER")
        .env_remove("STATUS_BOARD_PASSWORD")
        .env("XDG_CONFIG_HOME", "/nonexistent/status-board-tests");
    command
}

/// Runs the client to completion with `stdin` as input: exit code, stdout, stderr.
pub fn run_client(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    run_command(&mut client(args), stdin)
}

/// Runs `command` to completion with `stdin` as input: exit code, stdout, stderr.
pub fn run_command(command: &mut Command, stdin: &str) -> (Option<i32>, String, String) {
    let output = run_with_input(command, stdin, EXIT_TIMEOUT);
    (
        output.status.code(),
        String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    )
}

/// A program on a pseudo-terminal of kind `term`, as a person runs it.
pub fn on_a_terminal(mut command: Command, term: &str) -> rexpect::session::PtySession {
    command.env("TERM", term);
    rexpect::session::spawn_command(command, Some(10_000)).expect("spawn on a pty")
}

/// A watcher printing JSON; its stdout and stderr as lines. Killed on drop.
pub struct Watcher {
    pub child: Child,
    pub out: Lines,
    pub err: Lines,
}

impl Watcher {
    pub fn start(endpoint: &str, extra: &[&str]) -> Watcher {
        let (child, out, err) =
            spawn_piped(client(&["_", "--endpoint", endpoint, "--json"]).args(extra));
        Watcher { child, out, err }
    }

    /// The next board it prints.
    pub fn next(&self, what: &str) -> serde_json::Value {
        let line = self.out.next(what);
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Ctrl-C; a watcher leaves with 0. Returns what it wrote to stderr.
    pub fn stop(mut self) -> Vec<String> {
        send_signal(&self.child, libc::SIGINT);
        let status = wait_timeout(&mut self.child, EXIT_TIMEOUT).expect("exits on Ctrl-C");
        assert_eq!(status.code(), Some(0));
        self.err.rest()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// Milliseconds since the Unix epoch, as the server stamps statuses.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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

/// Extracts the Python server and client, or says why it cannot (for the
/// benchmark harness, which leaves the original's rows out).
///
/// Under `CI=true` a missing part is a failure; elsewhere it is said loudly.
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
    counters: std::sync::Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    /// Client to server, server to client.
    bytes: [std::sync::atomic::AtomicU64; 2],
    /// Copying threads still running: two per connection.
    open_pipes: std::sync::atomic::AtomicUsize,
    /// Connections taken so far.
    connections: std::sync::atomic::AtomicUsize,
    /// Every byte copied, both ways, in the order copied, when recording.
    wire: Option<std::sync::Mutex<Vec<u8>>>,
}

impl CountingProxy {
    /// A proxy to `127.0.0.1:target_port` on a free loopback port.
    pub fn start(target_port: u16) -> CountingProxy {
        CountingProxy::with(target_port, Counters::default())
    }

    /// A proxy that also keeps every byte it copies, for [`CountingProxy::wire`].
    pub fn recording(target_port: u16) -> CountingProxy {
        let counters = Counters {
            wire: Some(std::sync::Mutex::new(Vec::new())),
            ..Counters::default()
        };
        CountingProxy::with(target_port, counters)
    }

    fn with(target_port: u16, counters: Counters) -> CountingProxy {
        use std::sync::Arc;
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("address").port();
        let counters = Arc::new(counters);
        let shared = Arc::clone(&counters);
        thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target_port)) else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                // Counted before the connection: a waiter never sees it half open.
                shared.open_pipes.fetch_add(2, Ordering::SeqCst);
                shared.connections.fetch_add(1, Ordering::SeqCst);
                for (direction, from, to) in [(0, &client, &server), (1, &server, &client)] {
                    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                        shared.open_pipes.fetch_sub(1, Ordering::SeqCst);
                        continue;
                    };
                    let counters = Arc::clone(&shared);
                    thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut buffer = vec![0; 64 * 1024];
                        while let Ok(n) = from.read(&mut buffer) {
                            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                                break;
                            }
                            counters.bytes[direction].fetch_add(n as u64, Ordering::SeqCst);
                            if let Some(Ok(mut wire)) = counters.wire.as_ref().map(|w| w.lock()) {
                                wire.extend_from_slice(&buffer[..n]);
                            }
                        }
                        // Closing both ways ends the other direction's copy too.
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        counters.open_pipes.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            }
        });
        CountingProxy {
            endpoint: format!("tcp://127.0.0.1:{port}"),
            counters,
        }
    }

    /// Bytes copied so far, both ways.
    pub fn total(&self) -> u64 {
        use std::sync::atomic::Ordering;
        self.counters
            .bytes
            .iter()
            .map(|b| b.load(Ordering::SeqCst))
            .sum()
    }

    /// Every byte copied so far, both ways: what an eavesdropper sees.
    pub fn wire(&self) -> Vec<u8> {
        match &self.counters.wire {
            Some(wire) => wire.lock().map(|wire| wire.clone()).unwrap_or_default(),
            None => panic!("this proxy does not record: start it with CountingProxy::recording"),
        }
    }

    /// Bytes copied both ways once every connection has closed (a client that
    /// has exited: its last bytes may still be in the copy).
    pub fn total_when_closed(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while self.counters.connections.load(Ordering::SeqCst) == 0
            || self.counters.open_pipes.load(Ordering::SeqCst) > 0
        {
            assert!(
                Instant::now() < deadline,
                "a proxied connection never closed"
            );
            thread::sleep(Duration::from_millis(5));
        }
        self.total()
    }
}

/// Wire bytes, both ways, of the real watcher polling the server on `port`
/// every 10 ms until it has printed `count` boards (as JSON), then exiting.
pub fn polling_watcher_bytes(port: u16, count: u64) -> u64 {
    let proxy = CountingProxy::start(port);
    let count_text = count.to_string();
    let output = run_with_input(
        &mut client(&[
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
    proxy.total_when_closed()
}

// ---- open-file limits ----

/// Makes `command`'s child start with an open-file limit of `soft` (and
/// `hard`, if given), set between fork and exec.
pub fn limit_open_files(command: &mut Command, soft: u64, hard: Option<u64>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only getrlimit and setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = soft;
            if let Some(hard) = hard {
                limit.rlim_max = hard;
            }
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The open-file limit of this process, raised to at least `wanted` (the
/// attacks need more than the usual 1 024).
pub fn raise_own_open_file_limit(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct that lives here.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur >= wanted {
            return;
        }
        assert!(
            limit.rlim_max >= wanted,
            "this test needs {wanted} descriptors; the hard limit is {}",
            limit.rlim_max
        );
        limit.rlim_cur = wanted;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

/// The server in memory on a free loopback port, with an open-file limit of
/// `soft` (and `hard`, if given).
pub fn server_with_open_files(soft: u64, hard: Option<u64>) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_status_server"));
    command
        .args(["--bind", "tcp://127.0.0.1:*", "--in-memory", "--quiet"])
        .stdin(Stdio::null());
    limit_open_files(&mut command, soft, hard);
    Server::spawn(&mut command)
}
