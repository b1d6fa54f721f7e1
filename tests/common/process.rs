//! Child processes: spawned with their output read on threads (so that a
//! child never blocks on a full pipe), signalled, waited for with a bound,
//! run to their end, and killed on drop when a test fails half way.

#![allow(dead_code, reason = "each test crate uses a few of these items")]

use std::io::{BufRead, BufReader, Read, Write};
use std::ops::{Deref, DerefMut};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// Generous: these bound a hang, they do not measure speed.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A child process killed on drop: a test that fails leaves nothing running.
pub struct Running(pub Child);

impl Deref for Running {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    pub fn take(&mut self) -> Lines {
        Lines(std::mem::replace(&mut self.0, mpsc::channel().1))
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

    /// The first line from now on that contains `part`, all of it within
    /// `bound` (for a stream that keeps talking: a watcher's boards).
    pub fn find_within(&self, part: &str, bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        // The lines passed over, the last few kept for the panic's message.
        let mut passed = std::collections::VecDeque::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) if line.contains(part) => return line,
                Ok(line) => {
                    if passed.len() == 8 {
                        passed.pop_front();
                    }
                    passed.push_back(line);
                }
                Err(e) => panic!(
                    "no line with {part:?} within {bound:?} ({e}); the last lines before: {passed:?}"
                ),
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

/// Spawns `command` with stdout and stderr piped, each read as lines on a
/// thread. (Wrap the child in [`Running`] to have it killed on drop.)
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

/// Sends `signal` and waits for the exit; its exit code (`None`: killed by a
/// signal). Panics if the child outlives [`EXIT_TIMEOUT`].
pub fn stop_with(child: &mut Child, signal: i32) -> Option<i32> {
    send_signal(child, signal);
    wait_timeout(child, EXIT_TIMEOUT)
        .unwrap_or_else(|| panic!("no exit within {EXIT_TIMEOUT:?} of signal {signal}"))
        .code()
}

/// Runs a command with `stdin` as input; panics if it outlives `timeout`.
pub fn run_with_input(command: &mut Command, stdin: impl AsRef<[u8]>, timeout: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.as_ref().to_vec();
    thread::spawn(move || {
        let _ = input.write_all(&stdin);
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

/// Runs `command` to completion with `stdin` as input: exit code, stdout, stderr.
pub fn run_command(
    command: &mut Command,
    stdin: impl AsRef<[u8]>,
) -> (Option<i32>, String, String) {
    let output = run_with_input(command, stdin, EXIT_TIMEOUT);
    (
        output.status.code(),
        String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    )
}

fn read_all_on_thread(mut stream: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf);
        buf
    })
}
