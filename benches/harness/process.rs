//! Child processes: started, read, measured from /proc, and never waited on
//! without a bound.

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common;
use crate::stats::Sample;

/// How long a line the harness waits for may take, all lines before it
/// included: it bounds a hang, it measures nothing.
pub const LINE_BOUND: Duration = Duration::from_secs(30);

/// A process (ours or another), its stdout as lines; killed on drop.
pub struct Spawned {
    pub child: Child,
    pub lines: common::Lines,
    /// Kept, so that the child's stderr stays open while it runs.
    _stderr: common::Lines,
}

impl Spawned {
    pub fn start(command: &mut Command) -> Spawned {
        let (child, lines, stderr) = common::spawn_piped(command);
        Spawned {
            child,
            lines,
            _stderr: stderr,
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until a line of `lines` contains `wanted`, within [`LINE_BOUND`].
pub fn wait_for(lines: &common::Lines, wanted: &str) {
    let deadline = Instant::now() + LINE_BOUND;
    while !lines.next(wanted).contains(wanted) {
        assert!(
            Instant::now() < deadline,
            "no line with {wanted:?} within {LINE_BOUND:?}"
        );
    }
}

/// Whether `program --version` runs.
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `command` to its end with `input` on its stdin; its stdout, or
/// `None` if it failed or outlived `bound` (then it is killed).
pub fn output_within(command: &mut Command, input: &[u8], bound: Duration) -> Option<String> {
    use std::io::{Read, Write};
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let (mut stdin, mut stdout) = (child.stdin.take()?, child.stdout.take()?);
    let input = input.to_vec();
    // On threads, so that neither pipe can fill and stall the other; both
    // end when the child does.
    thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let reader = thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        text
    });
    let status = common::wait_timeout(&mut child, bound)?;
    let text = reader.join().ok()?;
    status
        .success()
        .then(|| String::from_utf8_lossy(&text).into_owned())
}

/// Median wall time of running `command` to completion `n` times, each
/// killed (and the run failed) if it outlives [`RUN_BOUND`].
pub fn median_run(n: usize, mut command: impl FnMut() -> Command) -> Duration {
    let times: Vec<Duration> = (0..n).map(|_| timed_run(&mut command())).collect();
    crate::stats::median(times)
}

/// How long one run of a one-shot program may take.
const RUN_BOUND: Duration = Duration::from_secs(30);

/// The wall time of one run of `command`, which must succeed.
fn timed_run(command: &mut Command) -> Duration {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let pid = child.id();
    // Waited for on a thread that notes the time at once (a polling wait
    // would add its period to a run of a few ms); this one kills on overrun.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send((status, started.elapsed()));
    });
    match rx.recv_timeout(RUN_BOUND) {
        Ok((Ok(status), took)) => {
            assert!(status.success(), "{command:?}: {status}");
            took
        }
        Ok((Err(e), _)) => panic!("wait for {command:?}: {e}"),
        Err(_) => {
            // SAFETY: kill(2) has no memory effects; the child is not reaped
            // yet (its waiter has not answered), so the pid is still its own.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{command:?} did not finish within {RUN_BOUND:?}")
        }
    }
}

/// A process's resident memory in KiB, from /proc (0 if unreadable).
pub fn resident_kib(child: &Child) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `run`, with the CPU time `server` used during it per request answered.
pub fn with_server_cpu(server: &Child, run: impl FnOnce() -> Sample) -> Sample {
    with_cpu(|| cpu_time(server), run)
}

/// `run`, with the CPU time `used()` grew by during it per request answered
/// (for a target of several processes: their sum).
pub fn with_cpu(used: impl Fn() -> Duration, run: impl FnOnce() -> Sample) -> Sample {
    let before = used();
    let mut sample = run();
    let used = used().saturating_sub(before);
    sample.server_cpu = (sample.requests > 0).then(|| used.div_f64(sample.requests as f64));
    sample
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(child: &Child) -> f64 {
    cpu_time(child).as_secs_f64()
}

/// The CPU time (user + system, all its threads, those ended too) a process
/// has used so far, to the nanosecond: on a shared machine it says what a
/// server did, where its wall time also says how long it waited for a core.
pub fn cpu_time(child: &Child) -> Duration {
    let mut clock: libc::clockid_t = 0;
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both calls only write to the locals passed by pointer.
    let ok = unsafe {
        libc::clock_getcpuclockid(child.id() as libc::pid_t, &mut clock) == 0
            && libc::clock_gettime(clock, &mut now) == 0
    };
    match ok {
        true => Duration::new(now.tv_sec as u64, now.tv_nsec as u32),
        false => Duration::ZERO,
    }
}

/// Kills (SIGKILL) every process whose parent is this one, found in /proc:
/// the servers, floors and tools the harness started and has not reaped.
pub fn kill_children() {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
        let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                // After the command's closing parenthesis: state, then the parent's pid.
                let (_, rest) = stat.rsplit_once(')')?;
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            });
        if parent == Some(me) {
            // SAFETY: kill(2) has no memory effects; the pid is our own child's.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}
