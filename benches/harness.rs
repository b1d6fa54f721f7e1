//! The benchmark harness: `cargo bench --bench harness` prints markdown tables.
//!
//! Every figure is measured side by side in one run, interleaved, median of
//! several runs: our server, the libzmq floor (a bare REP socket in this
//! process that answers with a fixed reply of the same size), the Python
//! original (when python3 and pyzmq are there) and Redis (when installed).
//! `-- --smoke` runs every scenario briefly so that CI keeps the harness alive;
//! its figures mean nothing. No figure is ever asserted.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use status_board::storage;

/// How long and how often to measure.
struct Settings {
    smoke: bool,
    duration: Duration,
    warmup: Duration,
    repeats: usize,
    clients: Vec<usize>,
    boards: Vec<usize>,
    one_shots: usize,
    memory_entries: usize,
}

impl Settings {
    fn from_args() -> Settings {
        let smoke = std::env::args().any(|a| a == "--smoke");
        if smoke {
            Settings {
                smoke,
                duration: Duration::from_millis(150),
                warmup: Duration::from_millis(30),
                repeats: 1,
                clients: vec![1, 4, 16],
                boards: vec![1, 1_000, 10_000],
                one_shots: 3,
                memory_entries: 100_000,
            }
        } else {
            Settings {
                smoke,
                duration: Duration::from_secs(1),
                warmup: Duration::from_millis(200),
                repeats: 3,
                clients: vec![1, 4, 16],
                boards: vec![1, 1_000, 10_000],
                one_shots: 40,
                memory_entries: 100_000,
            }
        }
    }
}

/// One measurement of closed-loop load.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rps: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Sample {
    fn cells(&self) -> String {
        format!(
            "{:.0} | {} / {} / {}",
            self.rps,
            micros(self.p50),
            micros(self.p99),
            micros(self.max)
        )
    }
}

fn micros(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

/// `clients` REQ sockets in a closed loop against `endpoint` for the set duration.
///
/// One thread polls every socket, as redis-benchmark does with its connections:
/// on two cores, a thread per client would measure the scheduler.
fn load(
    endpoint: &str,
    clients: usize,
    request: &dyn Fn(usize, u64) -> Vec<u8>,
    s: &Settings,
) -> Sample {
    load_as(None, endpoint, clients, request, s)
}

/// [`load`], every client logged in as `(user, password)` if given.
fn load_as(
    login: Option<(&str, &str)>,
    endpoint: &str,
    clients: usize,
    request: &dyn Fn(usize, u64) -> Vec<u8>,
    s: &Settings,
) -> Sample {
    let context = zmq::Context::new();
    let sockets: Vec<zmq::Socket> = (0..clients)
        .map(|_| {
            let socket = context.socket(zmq::REQ).expect("REQ socket");
            socket.set_linger(0).expect("LINGER");
            if let Some((user, password)) = login {
                socket.set_plain_username(Some(user)).expect("user");
                socket.set_plain_password(Some(password)).expect("password");
            }
            socket.connect(endpoint).expect("connect");
            socket
        })
        .collect();
    // One poll each before the clock starts: every connection is up, and every
    // login done (they are checked one after the other, ~20 ms each).
    for socket in &sockets {
        socket.send(&b"_:"[..], 0).expect("send");
        socket.set_rcvtimeo(10_000).expect("RCVTIMEO");
        socket.recv_msg(0).expect("a first reply within 10 s");
    }
    let start = Instant::now();
    let (measure_from, end) = (start + s.warmup, start + s.warmup + s.duration);
    let mut sent_at = vec![start; clients];
    let mut count = vec![0u64; clients];
    for (k, socket) in sockets.iter().enumerate() {
        sent_at[k] = Instant::now();
        socket.send(request(k, 0), 0).expect("send");
    }
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut outstanding = clients;
    while outstanding > 0 {
        let mut items: Vec<zmq::PollItem> = sockets
            .iter()
            .map(|s| s.as_poll_item(zmq::POLLIN))
            .collect();
        let ready = zmq::poll(&mut items, 10_000).expect("poll");
        assert!(ready > 0, "no reply from {endpoint} in 10 s");
        let readable: Vec<usize> = (0..clients).filter(|&k| items[k].is_readable()).collect();
        drop(items);
        for k in readable {
            sockets[k].recv_msg(0).expect("reply");
            let now = Instant::now();
            if sent_at[k] >= measure_from {
                latencies.push(now - sent_at[k]);
            }
            if now < end {
                count[k] += 1;
                sent_at[k] = now;
                sockets[k].send(request(k, count[k]), 0).expect("send");
            } else {
                outstanding -= 1;
            }
        }
    }
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get((latencies.len().saturating_sub(1) as f64 * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    Sample {
        rps: latencies.len() as f64 / s.duration.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
        max: latencies.last().copied().unwrap_or_default(),
    }
}

/// Runs each target once per repeat, interleaved, and keeps the median by throughput.
fn interleaved(targets: &[&dyn Fn() -> Sample], repeats: usize) -> Vec<Sample> {
    let mut runs: Vec<Vec<Sample>> = vec![Vec::new(); targets.len()];
    for _ in 0..repeats {
        for (target, samples) in targets.iter().zip(&mut runs) {
            samples.push(target());
        }
    }
    runs.into_iter()
        .map(|mut samples| {
            samples.sort_by(|a, b| a.rps.total_cmp(&b.rps));
            samples[samples.len() / 2]
        })
        .collect()
}

/// Makes client K's Nth request.
type RequestFn = fn(usize, u64) -> Vec<u8>;

fn poll_request(_: usize, _: u64) -> Vec<u8> {
    b"_:".to_vec()
}

fn update_request(k: usize, i: u64) -> Vec<u8> {
    format!("bench-{k}: update {i}").into_bytes()
}

/// The libzmq floor: a bare REP socket that answers every request with a fixed
/// reply. It runs as a child process of this harness, as our server runs as one.
struct Floor {
    child: Child,
    endpoint: String,
}

impl Floor {
    fn start(reply: &[u8], dir: &Path) -> Floor {
        let file = dir.join(format!("floor-reply-{}", reply.len()));
        std::fs::write(&file, reply).expect("write reply");
        let mut child = Command::new(std::env::current_exe().expect("harness path"))
            .arg(format!("--serve-floor={}", file.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn floor");
        let stdout = common::Lines::from(child.stdout.take().expect("piped"));
        let endpoint = common::endpoint_from_waiting_line(&stdout.next("the floor's endpoint"));
        Floor { child, endpoint }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The floor process: receive, answer with the fixed reply, nothing else.
fn serve_floor(reply_file: &str) {
    let reply = std::fs::read(reply_file).expect("read reply");
    let context = zmq::Context::new();
    let socket = context.socket(zmq::REP).expect("REP socket");
    socket.set_linger(0).expect("LINGER");
    socket.bind("tcp://127.0.0.1:*").expect("bind");
    let endpoint = socket
        .get_last_endpoint()
        .expect("endpoint")
        .expect("UTF-8");
    println!("Waiting for clients on '{endpoint}'.");
    loop {
        // Killed by the harness when it is done.
        socket.recv_msg(0).expect("floor receive");
        socket.send(&reply[..], 0).expect("floor send");
    }
}

/// A state file holding `n` entries like a real board's, for instant start-up.
fn prefilled_state(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join(format!("board-{n}.log"));
    let mut data = storage::MAGIC.to_vec();
    let now_ms = common::now_ms();
    for i in 0..n {
        storage::encode_set(
            &mut data,
            &format!("user-{i:05}"),
            &format!(": status text of user {i}"),
            now_ms,
        )
        .expect("record");
    }
    std::fs::write(&path, data).expect("write state");
    path
}

/// Our server with `extra` arguments, killed on drop.
fn ours(extra: &[&str]) -> common::Server {
    let mut args = vec!["--quiet"];
    args.extend_from_slice(extra);
    common::Server::start(&args)
}

fn resident_kib(child: &Child) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The Python original, when python3 and pyzmq are there.
struct Python {
    server: common::PythonServer,
    _reference: common::Reference,
}

impl Python {
    fn start() -> Option<Python> {
        let reference = common::reference_or_skip("benchmark of the Python original")?;
        Some(Python {
            server: common::PythonServer::start(&reference),
            _reference: reference,
        })
    }

    /// Adds entries up to `n`, the same as ours (each reply is the whole board:
    /// quadratic, so slow).
    fn fill_to(&self, from: usize, n: usize) {
        let context = zmq::Context::new();
        let socket = context.socket(zmq::REQ).expect("REQ");
        socket.set_linger(0).expect("LINGER");
        socket.connect(&self.server.endpoint).expect("connect");
        for i in from..n {
            socket
                .send(format!("user-{i:05}: status text of user {i}").as_str(), 0)
                .expect("send");
            socket.recv_bytes(0).expect("reply");
        }
    }
}

/// A Redis server in a temporary directory, when Redis is installed.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Redis {
    /// `appendfsync` as Redis names it, or `None` for no append-only file at all.
    fn start(appendfsync: Option<&str>) -> Option<Redis> {
        if !have("redis-server") || !have("redis-benchmark") || !have("redis-cli") {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = common::free_port();
        let mut command = Command::new("redis-server");
        command
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match appendfsync {
            Some(policy) => command.args(["--appendonly", "yes", "--appendfsync", policy]),
            None => command.args(["--appendonly", "no"]),
        };
        let child = command.spawn().ok()?;
        let redis = Redis {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if redis.cli(&["ping"]).is_some_and(|out| out.trim() == "PONG") {
                return Some(redis);
            }
            thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn cli(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `redis-benchmark -t set -c K`, sized to run about the set duration.
    fn bench_set(&self, clients: usize, s: &Settings) -> Option<f64> {
        let run = |n: u64| -> Option<f64> {
            let output = Command::new("redis-benchmark")
                .args(["-p", &self.port.to_string(), "-t", "set", "-q"])
                .args(["-c", &clients.to_string(), "-n", &n.to_string()])
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&output.stdout);
            // "SET: 12345.67 requests per second, p50=0.175 msec" after \r progress lines
            let line = text
                .rsplit('\r')
                .next()?
                .lines()
                .find(|l| l.contains("SET:"))?
                .to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        };
        let estimate = run(500)?;
        let n = (estimate * s.duration.as_secs_f64()).max(500.0) as u64;
        run(n)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Median wall time of running `command` to completion `n` times.
fn median_run(n: usize, mut command: impl FnMut() -> Command) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            let status = command()
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run");
            assert!(status.success(), "{status}");
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

fn polls(s: &Settings, out: &mut String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let python = Python::start();
    let mut python_entries = 0;
    writeln!(out, "## Poll throughput\n").ok();
    writeln!(
        out,
        "Requests/s, and latency p50 / p99 / max in µs; `_:` polls from K closed-loop REQ clients.\n"
    )
    .ok();
    writeln!(
        out,
        "| board | K | floor req/s | floor µs | ours req/s | ours µs | ours / floor | Python req/s | Python µs | ours / Python |"
    )
    .ok();
    writeln!(out, "|{}", " --- |".repeat(10)).ok();
    for &entries in &s.boards {
        let state = prefilled_state(dir.path(), entries);
        let server = ours(&["--state", state.to_str().expect("UTF-8"), "--fsync", "no"]);
        let reply = server.request(b"_:");
        let floor = Floor::start(&reply, dir.path());
        let python = python.as_ref().filter(|_| !s.smoke || entries <= 1_000);
        if let Some(python) = python {
            python.fill_to(python_entries, entries);
            python_entries = entries;
            let theirs =
                common::request_parts(&python.server.endpoint, &[b"_:"]).expect("python reply");
            assert_eq!(theirs, reply, "the Python board must be the same bytes");
        }
        for &clients in &s.clients {
            let floor_run = || load(&floor.endpoint, clients, &poll_request, s);
            let ours_run = || load(&server.endpoint, clients, &poll_request, s);
            let python_run = || {
                load(
                    &python.expect("checked").server.endpoint,
                    clients,
                    &poll_request,
                    s,
                )
            };
            let mut targets: Vec<&dyn Fn() -> Sample> = vec![&floor_run, &ours_run];
            if python.is_some() {
                targets.push(&python_run);
            }
            let samples = interleaved(&targets, s.repeats);
            let (python_cells, vs_python) = match samples.get(2) {
                Some(p) => (p.cells(), format!("{:.1}×", samples[1].rps / p.rps)),
                None => ("n/a | n/a".into(), "n/a".into()),
            };
            writeln!(
                out,
                "| {entries} ({} B) | {clients} | {} | {} | {:.2} | {python_cells} | {vs_python} |",
                reply.len(),
                samples[0].cells(),
                samples[1].cells(),
                samples[1].rps / samples[0].rps,
            )
            .ok();
        }
    }
    writeln!(out).ok();
}

/// Updates on 1 000- and 10 000-entry boards, where every reply is the whole
/// board: against the floor answering a reply of the same size. Each client
/// updates a name in the middle of the board, with a status whose length
/// changes (`update 9`, `update 10`): the lines after it move.
fn big_board_updates(s: &Settings, out: &mut String) {
    writeln!(
        out,
        "Updates on a big board, `--fsync no`: K clients each update a name in the middle \
         of the board (`user-N: update I`, a status whose length changes), against the floor \
         answering a reply of the same size.\n\n\
         | board | K | floor req/s | floor µs | ours req/s | ours µs | ours / floor |\n\
         | --- | --- | --- | --- | --- | --- | --- |"
    )
    .ok();
    let dir = tempfile::tempdir().expect("temp dir");
    for &entries in s.boards.iter().filter(|&&n| n >= 1_000) {
        let state = prefilled_state(dir.path(), entries);
        let server = ours(&["--state", state.to_str().expect("UTF-8"), "--fsync", "no"]);
        let middle = entries / 2;
        let request =
            move |k: usize, i: u64| format!("user-{:05}: update {i}", middle + k).into_bytes();
        let reply = server.request(&request(0, 0));
        let floor = Floor::start(&reply, dir.path());
        for clients in [1, 4] {
            let samples = interleaved(
                &[&|| load(&floor.endpoint, clients, &request, s), &|| {
                    load(&server.endpoint, clients, &request, s)
                }],
                s.repeats,
            );
            writeln!(
                out,
                "| {entries} ({} B) | {clients} | {} | {} | {:.2} |",
                reply.len(),
                samples[0].cells(),
                samples[1].cells(),
                samples[1].rps / samples[0].rps
            )
            .ok();
        }
    }
    writeln!(out).ok();
}

fn updates(s: &Settings, out: &mut String) {
    writeln!(out, "## Updates\n").ok();
    writeln!(
        out,
        "Requests/s, and latency p50 / p99 / max in µs, of updates from K clients, each to its own name; \
         Redis: `redis-benchmark -t set -c K` with the matching `appendfsync`.\n"
    )
    .ok();
    writeln!(
        out,
        "| durability | K | ours req/s | ours µs | Redis SET req/s | ours / Redis |"
    )
    .ok();
    writeln!(out, "|{}", " --- |".repeat(6)).ok();
    let dir = tempfile::tempdir().expect("temp dir");
    for (policy, redis_policy) in [
        ("in-memory", None),
        ("no", Some("no")),
        ("everysec", Some("everysec")),
        ("always", Some("always")),
    ] {
        let state = dir.path().join(format!("{policy}.log"));
        let args: Vec<&str> = match policy {
            "in-memory" => vec![],
            _ => vec!["--state", state.to_str().expect("UTF-8"), "--fsync", policy],
        };
        let server = ours(&args);
        let redis = Redis::start(redis_policy);
        for &clients in &s.clients {
            let samples = interleaved(
                &[&|| load(&server.endpoint, clients, &update_request, s)],
                s.repeats,
            );
            let theirs = redis.as_ref().and_then(|r| {
                let mut runs: Vec<f64> = (0..s.repeats)
                    .filter_map(|_| r.bench_set(clients, s))
                    .collect();
                runs.sort_by(f64::total_cmp);
                runs.get(runs.len() / 2).copied()
            });
            let (redis_cell, ratio) = match theirs {
                Some(rps) => (format!("{rps:.0}"), format!("{:.2}", samples[0].rps / rps)),
                None => ("n/a".into(), "n/a".into()),
            };
            writeln!(
                out,
                "| {policy} | {clients} | {} | {redis_cell} | {ratio} |",
                samples[0].cells()
            )
            .ok();
        }
    }
    writeln!(out).ok();
    big_board_updates(s, out);
}

fn one_shot(s: &Settings, out: &mut String) {
    writeln!(out, "## One-shot client\n").ok();
    let server = ours(&[]);
    let client = env!("CARGO_BIN_EXE_status_client");
    let ours_time = || {
        median_run(s.one_shots, || {
            let mut c = Command::new(client);
            c.args(["bench", "--set", "one-shot", "--endpoint", &server.endpoint]);
            c
        })
    };
    match Redis::start(None) {
        Some(redis) => {
            let port = redis.port.to_string();
            let redis_time = || {
                median_run(s.one_shots, || {
                    let mut c = Command::new("redis-cli");
                    c.args(["-p", &port, "SET", "bench", "one-shot"]);
                    c
                })
            };
            // Interleave, then keep the median of the medians.
            let mut pairs: Vec<(Duration, Duration)> = (0..s.repeats)
                .map(|_| (ours_time(), redis_time()))
                .collect();
            pairs.sort_by_key(|pair| pair.0);
            let (o, r) = pairs[pairs.len() / 2];
            writeln!(
                out,
                "Median wall time of one whole process, {} runs each, median of {}: \
                 `status_client bench --set one-shot` {} µs, `redis-cli SET bench one-shot` {} µs, ratio {:.2}.\n",
                s.one_shots,
                s.repeats,
                micros(o),
                micros(r),
                o.as_secs_f64() / r.as_secs_f64()
            )
            .ok();
        }
        None => {
            writeln!(
                out,
                "Median wall time of `status_client bench --set one-shot`: {} µs (redis-cli n/a).\n",
                micros(ours_time())
            )
            .ok();
        }
    }
}

/// RESP for `redis-cli --pipe`: one command per entry of the benchmark board.
fn redis_load(n: usize, hash: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let bulk = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(format!("${}\r\n{s}\r\n", s.len()).as_bytes());
    };
    for i in 0..n {
        let (name, status) = (format!("user-{i:05}"), format!("status text of user {i}"));
        if hash {
            out.extend_from_slice(b"*4\r\n");
            bulk(&mut out, "HSET");
            bulk(&mut out, "board");
        } else {
            out.extend_from_slice(b"*3\r\n");
            bulk(&mut out, "SET");
        }
        bulk(&mut out, &name);
        bulk(&mut out, &status);
    }
    out
}

/// Redis's resident memory and `used_memory` (bytes), empty and holding the
/// benchmark board as one hash or as plain keys.
fn redis_memory(n: usize, hash: bool) -> Option<((u64, u64), (u64, u64))> {
    use std::io::Write;
    let redis = Redis::start(None)?;
    let used = |redis: &Redis| -> u64 {
        redis
            .cli(&["info", "memory"])
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("used_memory:"))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0)
    };
    let empty = (resident_kib(&redis.child), used(&redis));
    let mut pipe = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    pipe.stdin.take()?.write_all(&redis_load(n, hash)).ok()?;
    pipe.wait().ok()?;
    Some((empty, (resident_kib(&redis.child), used(&redis))))
}

fn memory(s: &Settings, out: &mut String) {
    writeln!(out, "## Memory\n").ok();
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = ours(&[]);
    empty.request(b"_:");
    let baseline = resident_kib(&empty.child);
    let n = s.memory_entries;
    let state = prefilled_state(dir.path(), n);
    let full = ours(&[
        "--state",
        state.to_str().expect("UTF-8"),
        "--max-entries",
        &n.to_string(),
    ]);
    let board = full.request(b"_:");
    let resident = resident_kib(&full.child);
    full.request(b"_:@board");
    let after_snapshot = resident_kib(&full.child);
    let state_bytes = std::fs::metadata(&state).map(|m| m.len()).unwrap_or(0);
    let per_entry = |kib: u64| (kib * 1024) as f64 / n as f64;
    writeln!(
        out,
        "{n} entries (`user-NNNNN: status text of user N`): the encoded board is {} KiB \
         ({:.0} bytes an entry), the state file {} KiB. Resident memory above an empty \
         server (ours: after one poll; the empty server: {baseline} KiB):\n\n\
         | server | above empty | bytes an entry | Redis `used_memory` above empty, bytes an entry |\n\
         | --- | --- | --- | --- |\n\
         | ours | {} KiB | {:.0} | |\n\
         | ours, after answering a snapshot (`_:@board`) too | {} KiB | {:.0} | |",
        board.len() / 1024,
        board.len() as f64 / n as f64,
        state_bytes / 1024,
        resident.saturating_sub(baseline),
        per_entry(resident.saturating_sub(baseline)),
        after_snapshot.saturating_sub(baseline),
        per_entry(after_snapshot.saturating_sub(baseline)),
    )
    .ok();
    for (what, hash) in [("one hash, name → status", true), ("plain keys", false)] {
        match redis_memory(n, hash) {
            Some(((rss0, used0), (rss, used))) => writeln!(
                out,
                "| Redis, {what} | {} KiB | {:.0} | {:.0} |",
                rss.saturating_sub(rss0),
                per_entry(rss.saturating_sub(rss0)),
                used.saturating_sub(used0) as f64 / n as f64
            ),
            None => writeln!(out, "| Redis, {what} | n/a (no redis-server) | | |"),
        }
        .ok();
    }
    writeln!(out).ok();
}

/// The value at quantile `q` of sorted durations.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get((sorted.len().saturating_sub(1) as f64 * q).round() as usize)
        .copied()
        .unwrap_or_default()
}

/// `p50 / p99 / max` in ms of some durations.
fn latency_cells(mut times: Vec<Duration>) -> String {
    times.sort_unstable();
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
    format!(
        "{} | {} | {} | {}",
        times.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(times.last().copied().unwrap_or_default())
    )
}

/// Posts `n` updates to `endpoint`, one at a time, and times each until
/// `arrived(i)` says the watcher has it. Each waits a spread-out part of
/// `spread` first, so that the samples do not fall in step with heartbeats
/// or polls.
fn update_to_watcher(
    endpoint: &str,
    n: usize,
    spread: Duration,
    mut arrived: impl FnMut(u64),
) -> Vec<Duration> {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::REQ).expect("REQ");
    socket.set_linger(0).expect("LINGER");
    socket.set_rcvtimeo(10_000).expect("RCVTIMEO");
    socket.connect(endpoint).expect("connect");
    let mut times = Vec::with_capacity(n);
    for i in 0..n as u64 {
        // Steps of the golden ratio cover the spread evenly for any n, in no fixed order.
        let fraction = (i as f64 * 0.618_033_988_75).fract();
        thread::sleep(spread.mul_f64(fraction));
        let started = Instant::now();
        socket
            .send(format!("bench-live: v{i}").as_bytes(), 0)
            .expect("send");
        socket.recv_bytes(0).expect("the update's reply");
        arrived(i);
        times.push(started.elapsed());
    }
    times
}

/// Waits until a line of `lines` contains `wanted`.
fn wait_for(lines: &common::Lines, wanted: &str) {
    while !lines.next(wanted).contains(wanted) {}
}

/// A watcher process (ours or the original), its stdout as lines; killed on drop.
struct Spawned {
    child: Child,
    lines: common::Lines,
    /// Kept, so that the child's stderr stays open while it runs.
    _stderr: common::Lines,
}

impl Spawned {
    fn start(command: &mut Command) -> Spawned {
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

/// Wire bytes per request of `request`, after the connection is set up.
fn wire_bytes_per_request(port: u16, request: &[u8], n: u64) -> f64 {
    let proxy = common::CountingProxy::start(port);
    let context = zmq::Context::new();
    let socket = context.socket(zmq::REQ).expect("REQ");
    socket.set_linger(0).expect("LINGER");
    socket.connect(&proxy.endpoint).expect("connect");
    let ask = || {
        socket.send(request, 0).expect("send");
        socket.recv_bytes(0).expect("reply")
    };
    ask(); // the handshake and a first answer are not counted
    let before = proxy.total();
    for _ in 0..n {
        ask();
    }
    (proxy.total() - before) as f64 / n as f64
}

/// Update-to-watcher latency through our real watcher (`--json`), `samples` times.
fn ours_to_watcher(server: &common::Server, samples: usize) -> Vec<Duration> {
    let watcher = Spawned::start(Command::new(env!("CARGO_BIN_EXE_status_client")).args([
        "_",
        "--endpoint",
        &server.endpoint,
        "--json",
        "--interval",
        "3600",
    ]));
    watcher.lines.next("the watcher's first board");
    thread::sleep(Duration::from_millis(500)); // the subscription settles
    update_to_watcher(&server.endpoint, samples, LIVE_SPREAD, |i| {
        wait_for(&watcher.lines, &format!("\"status\":\"v{i}\""))
    })
}

/// Our samples are this far apart, at most.
const LIVE_SPREAD: Duration = Duration::from_millis(10);

/// `clients` REQ sockets polling `endpoint` flat out until `stop` is set.
fn background_polls(
    endpoint: String,
    clients: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let context = zmq::Context::new();
        let sockets: Vec<zmq::Socket> = (0..clients)
            .map(|_| {
                let socket = context.socket(zmq::REQ).expect("REQ");
                socket.set_linger(0).expect("LINGER");
                socket.connect(&endpoint).expect("connect");
                socket.send("_:", 0).expect("send");
                socket
            })
            .collect();
        let mut polls = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let mut items: Vec<zmq::PollItem> = sockets
                .iter()
                .map(|s| s.as_poll_item(zmq::POLLIN))
                .collect();
            zmq::poll(&mut items, 100).expect("poll");
            let ready: Vec<usize> = (0..clients).filter(|&k| items[k].is_readable()).collect();
            drop(items);
            for k in ready {
                sockets[k].recv_msg(0).expect("reply");
                sockets[k].send("_:", 0).expect("send");
                polls += 1;
            }
        }
        polls
    })
}

fn live(s: &Settings, out: &mut String) {
    writeln!(out, "## Live board\n").ok();
    let samples = if s.smoke { 30 } else { 1_000 };
    let python_samples = if s.smoke { 2 } else { 20 };
    // The default durability: every update written to the state file before
    // it is answered (and published), forced to disk once a second.
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("live-everysec.log");
    let state = state.to_str().expect("UTF-8");
    let server = ours(&["--publish", "tcp://127.0.0.1:*", "--state", state]);
    let idle = ours_to_watcher(&server, samples);

    // The same while 16 clients poll as fast as they can.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = background_polls(server.endpoint.clone(), 16, std::sync::Arc::clone(&stop));
    let started = Instant::now();
    let busy = ours_to_watcher(&server, samples);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let background_rate = load.join().expect("the load") as f64 / started.elapsed().as_secs_f64();

    // Under `--fsync always` a change is published once it is durable.
    let state = dir.path().join("live-always.log");
    let durable = ours(&[
        "--publish",
        "tcp://127.0.0.1:*",
        "--state",
        state.to_str().expect("UTF-8"),
        "--fsync",
        "always",
    ]);
    let always = ours_to_watcher(&durable, samples);
    drop(durable);

    // The publisher alone: a SUB socket in this process, no watcher program.
    let snapshot = common::snapshot(&server.endpoint);
    let context = zmq::Context::new();
    let sub = context.socket(zmq::SUB).expect("SUB");
    sub.set_linger(0).expect("LINGER");
    sub.set_subscribe(b"").expect("subscribe");
    sub.set_rcvtimeo(10_000).expect("RCVTIMEO");
    sub.connect(&snapshot.header.publish[0]).expect("connect");
    thread::sleep(Duration::from_millis(500));
    let raw_times = update_to_watcher(&server.endpoint, samples, LIVE_SPREAD, |i| {
        let wanted = format!(" bench-live: v{i}");
        while !String::from_utf8_lossy(&sub.recv_bytes(0).expect("a change")).ends_with(&wanted) {}
    });

    writeln!(
        out,
        "Update-to-watcher latency on loopback: from sending `bench-live: vN` until the \
         watcher has it, one update at a time, 0-10 ms apart (0-2 s for the original, whose \
         watcher polls every 2 s).\n\n\
         | watcher | samples | p50 ms | p99 ms | max ms |\n| --- | --- | --- | --- | --- |\n\
         | ours: `status_client _ --json`, changes pushed (`--publish`), default `--fsync everysec` | {} |\n\
         | the same while 16 clients poll flat out ({background_rate:.0} polls/s) | {} |\n\
         | the same, `--fsync always` (published once durable) | {} |\n\
         | (the publisher alone: a SUB socket in the harness, `--fsync everysec`) | {} |",
        latency_cells(idle),
        latency_cells(busy),
        latency_cells(always),
        latency_cells(raw_times)
    )
    .ok();
    match Python::start() {
        Some(python) => {
            // The original's watcher polls every 2 s and prints the whole board.
            let watcher = Spawned::start(
                Command::new("python3")
                    .arg("-u")
                    .arg(&python._reference.client)
                    .args(["_", &python.server.port.to_string(), "127.0.0.1"]),
            );
            watcher.lines.next("the original watcher's first line");
            // Spread over a whole poll period: an update lands anywhere in it.
            let period = Duration::from_secs(2);
            let times = update_to_watcher(&python.server.endpoint, python_samples, period, |i| {
                wait_for(&watcher.lines, &format!("- bench-live: v{i}"))
            });
            writeln!(
                out,
                "| the original: `status_client.py _` against `status_server.py` (polls every 2 s) | {} |\n",
                latency_cells(times)
            )
            .ok();
        }
        None => {
            writeln!(out, "| the original | n/a (no python3 with pyzmq) |\n").ok();
        }
    }

    // Bytes per unchanged poll at 10 000 entries, counted on the wire.
    let state = prefilled_state(dir.path(), 10_000);
    let big = ours(&["--state", state.to_str().expect("UTF-8"), "--fsync", "no"]);
    let snapshot = common::snapshot(&big.endpoint);
    let since = status_board::protocol::format_since(&snapshot.header.epoch, snapshot.header.seq);
    let n = if s.smoke { 20 } else { 200 };
    let since_bytes = wire_bytes_per_request(big.port(), since.as_bytes(), n);
    let full_bytes = wire_bytes_per_request(big.port(), b"_:", n.min(50));
    let reply = big.request(since.as_bytes());
    // Our real watcher: 41 boards cost the first snapshot plus 40 unchanged polls.
    let per_watcher_poll = (common::polling_watcher_bytes(big.port(), 41) as f64
        - common::polling_watcher_bytes(big.port(), 1) as f64)
        / 40.0;
    writeln!(
        out,
        "Bytes per poll of a 10 000-entry board that has not changed, counted by a TCP proxy \
         (both directions, ZeroMQ framing included; TCP/IP headers not included).\n\n\
         | poll | request | reply | wire bytes per poll |\n| --- | --- | --- | --- |\n\
         | `{since}` (ours) | {} B | `{}` ({} B) | {since_bytes:.0} |\n\
         | our watcher polling (no `--publish`), 40 polls after its first snapshot | | | {per_watcher_poll:.0} |\n\
         | `_:` (the original's poll; the Python server's reply is the same bytes) | 2 B | the board ({} B) | {full_bytes:.0} |\n",
        since.len(),
        String::from_utf8_lossy(&reply),
        reply.len(),
        big.request(b"_:").len(),
    )
    .ok();
}

/// The time from a fresh REQ socket's connect to its first reply, logged in
/// as `login` if given: the handshake (and, with a login, one argon2
/// verification) plus a poll. The median of `n`.
fn first_reply(endpoint: &str, login: Option<(&str, &str)>, n: usize) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let started = Instant::now();
            let reply =
                common::request_parts_as(login, endpoint, &[b"_:"], Duration::from_secs(10));
            assert!(reply.is_some(), "no reply from {endpoint}");
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

/// The time until a refused login is reported by the socket monitor. The median of `n`.
fn refusal(endpoint: &str, user: &str, password: &str, n: usize) -> Duration {
    let context = zmq::Context::new();
    let mut times: Vec<Duration> = (0..n)
        .map(|i| {
            let socket = context.socket(zmq::REQ).expect("REQ");
            socket.set_linger(0).expect("LINGER");
            socket.set_plain_username(Some(user)).expect("user");
            socket.set_plain_password(Some(password)).expect("password");
            let watch = format!("inproc://bench-refusal-{user}-{i}");
            socket
                .monitor(&watch, zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as i32)
                .expect("monitor");
            let monitor = context.socket(zmq::PAIR).expect("PAIR");
            monitor.connect(&watch).expect("connect the monitor");
            monitor.set_rcvtimeo(10_000).expect("RCVTIMEO");
            let started = Instant::now();
            socket.connect(endpoint).expect("connect");
            monitor.recv_multipart(0).expect("the refusal");
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

/// Logins: what one costs, and whether logged-in clients go as fast as open ones.
fn auth(s: &Settings, out: &mut String) {
    writeln!(out, "## Logins\n").ok();
    let dir = tempfile::tempdir().expect("temp dir");
    let users = dir.path().join("users");
    let hash = status_board::server::auth::hash_password(common::PASSWORD).expect("hash");
    common::write_private(&users, &format!("bench:{hash}:bench-*\n"));
    let open = ours(&[]);
    let authed = ours(&["--auth", users.to_str().expect("UTF-8")]);
    let login = Some(("bench", common::PASSWORD));
    let n = if s.smoke { 3 } else { 30 };
    let (open_first, login_first) = (
        first_reply(&open.endpoint, None, n),
        first_reply(&authed.endpoint, login, n),
    );
    let wrong = refusal(&authed.endpoint, "bench", "wrong", n);
    let unknown = refusal(&authed.endpoint, "nobody", common::PASSWORD, n);
    writeln!(
        out,
        "Connect, handshake and first poll on a fresh socket, median of {n}: open {} µs, \
         PLAIN login {} µs (one argon2id verification, 19 MiB, 2 passes). \
         A refused login, until the client's monitor reports it: wrong password {} µs, \
         unknown user {} µs.\n",
        micros(open_first),
        micros(login_first),
        micros(wrong),
        micros(unknown)
    )
    .ok();
    writeln!(
        out,
        "Requests/s, and latency p50 / p99 / max in µs, of K clients logged in (PLAIN) \
         against K open clients, one server each, interleaved.\n"
    )
    .ok();
    writeln!(
        out,
        "| request | K | open req/s | open µs | logged in req/s | logged in µs | logged in / open |"
    )
    .ok();
    writeln!(out, "|{}", " --- |".repeat(7)).ok();
    for (what, request) in [
        ("poll", poll_request as RequestFn),
        ("update", update_request),
    ] {
        for &clients in &s.clients {
            let samples = interleaved(
                &[
                    &|| load_as(None, &open.endpoint, clients, &request, s),
                    &|| load_as(login, &authed.endpoint, clients, &request, s),
                ],
                s.repeats,
            );
            let (o, a) = (samples[0], samples[1]);
            writeln!(
                out,
                "| {what} | {clients} | {} | {} | {:.2} |",
                o.cells(),
                a.cells(),
                a.rps / o.rps
            )
            .ok();
        }
    }
    writeln!(out).ok();
}

// ---- the web board ----

/// `status_web` for `server`, on a free port: its address and the process.
fn start_web(endpoint: &str) -> (String, Spawned) {
    let web = Spawned::start(Command::new(env!("CARGO_BIN_EXE_status_web")).args([
        "--endpoint",
        endpoint,
        "--listen",
        "127.0.0.1:0",
    ]));
    (common::web_address(&web.lines), web)
}

/// An `/events` stream, its response head read.
fn open_events(address: &str) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to status_web");
    write!(stream, "GET /events HTTP/1.1\r\nHost: {address}\r\n\r\n").expect("send");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("the response head");
        head.push(byte[0]);
    }
    stream
}

/// The number N after each `"status":"PREFIXN"` in `text`.
fn markers(text: &str, prefix: &str) -> Vec<u64> {
    let needle = format!("\"status\":\"{prefix}");
    text.match_indices(&needle)
        .filter_map(|(at, _)| {
            let digits: String = text[at + needle.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

/// Established TCP connections whose local port is `port` (Linux).
fn connections_to(port: u16) -> usize {
    let port = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .map(|text| {
            text.lines()
                .skip(1)
                .filter(|row| {
                    let f: Vec<&str> = row.split_whitespace().collect();
                    f.len() > 3 && f[1].ends_with(&port) && f[3] == "01"
                })
                .count()
        })
        .sum()
}

/// Why headless Chromium cannot run here, if it cannot.
fn browser_missing() -> Option<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !dir.join("node_modules/playwright-core").is_dir() {
        return Some("no playwright-core (npm ci --prefix tests/browser)".into());
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("no Chromium at {chromium}"));
    }
    None
}

/// The times of [`web_chain`]'s steps: the reply, the SUB, the raw reader,
/// and the DOM (or why there is no browser).
struct Chain {
    replies: Vec<Duration>,
    subs: Vec<Duration>,
    sses: Vec<Duration>,
    doms: Result<Vec<Duration>, String>,
}

/// Each change's way to a browser, step by step: from sending an update
/// until its reply, a SUB socket on the server's publisher, a raw `/events`
/// reader, and the page's DOM in headless Chromium have it.
fn web_chain(server: &common::Server, address: &str, samples: usize) -> Chain {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};
    // Raised when done: the observers' threads end within their timeouts.
    let done = Arc::new(AtomicBool::new(false));
    let (sub_tx, sub_rx) = mpsc::channel::<(u64, Instant)>();
    let publish = common::snapshot(&server.endpoint).header.publish[0].clone();
    let stop = Arc::clone(&done);
    // Said once the SUB has heard anything (a heartbeat, every second): its
    // subscription has reached the publisher, which drops what it sends before.
    let (heard_tx, heard) = mpsc::channel::<()>();
    let sub_thread = thread::spawn(move || {
        let context = zmq::Context::new();
        let sub = context.socket(zmq::SUB).expect("SUB");
        sub.set_linger(0).expect("LINGER");
        sub.set_subscribe(b"").expect("subscribe");
        sub.set_rcvtimeo(100).expect("RCVTIMEO");
        sub.connect(&publish).expect("connect");
        while !stop.load(Ordering::Relaxed) {
            let Ok(frame) = sub.recv_bytes(0) else {
                continue; // a timeout: look at the flag
            };
            let _ = heard_tx.send(());
            let text = String::from_utf8_lossy(&frame);
            if let Some(n) = text
                .rsplit_once("bench-dom v")
                .and_then(|(_, n)| n.parse().ok())
            {
                let _ = sub_tx.send((n, Instant::now()));
            }
        }
    });
    let (sse_tx, sse_rx) = mpsc::channel::<(u64, Instant)>();
    let mut events = open_events(address);
    let stop = Arc::clone(&done);
    let sse_thread = thread::spawn(move || {
        let mut buffer = [0u8; 65536];
        // Heartbeats come every second: a read returns at least that often.
        while let Ok(n @ 1..) = events.read(&mut buffer) {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let now = Instant::now();
            for marker in markers(&String::from_utf8_lossy(&buffer[..n]), "bench-dom v") {
                if sse_tx.send((marker, now)).is_err() {
                    return;
                }
            }
        }
    });
    let page = match browser_missing() {
        Some(why) => Err(why),
        None => {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/bench/dom-latency.mjs");
            let node = Spawned::start(
                Command::new("node")
                    .arg(script)
                    .arg(format!("http://{address}/"))
                    .stdin(Stdio::piped()),
            );
            wait_for(&node.lines, "ready");
            Ok(node)
        }
    };
    heard
        .recv_timeout(Duration::from_secs(10))
        .expect("the SUB hears the publisher's heartbeat");
    let context = zmq::Context::new();
    let req = context.socket(zmq::REQ).expect("REQ");
    req.set_linger(0).expect("LINGER");
    req.set_rcvtimeo(10_000).expect("RCVTIMEO");
    req.connect(&server.endpoint).expect("connect");
    let wait = |rx: &mpsc::Receiver<(u64, Instant)>, i: u64| loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok((n, at)) if n == i => return at,
            Ok(_) => {}
            Err(_) => panic!("change {i} never arrived"),
        }
    };
    let (mut replies, mut subs, mut sses, mut doms) = (vec![], vec![], vec![], vec![]);
    for i in 0..samples as u64 {
        let fraction = (i as f64 * 0.618_033_988_75).fract();
        thread::sleep(LIVE_SPREAD.mul_f64(fraction));
        let sent_epoch = std::time::SystemTime::now();
        let started = Instant::now();
        req.send(format!("bench: bench-dom v{i}").as_bytes(), 0)
            .expect("send");
        req.recv_bytes(0).expect("the update's reply");
        replies.push(started.elapsed());
        subs.push(wait(&sub_rx, i) - started);
        sses.push(wait(&sse_rx, i) - started);
        if let Ok(node) = &page {
            let wanted = format!("seen {i} ");
            let line = node.lines.find(&wanted);
            let at: f64 = line[wanted.len()..].trim().parse().expect("a time");
            let sent = sent_epoch
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64() * 1e3)
                .unwrap_or_default();
            doms.push(Duration::from_secs_f64(((at - sent) / 1e3).max(0.0)));
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = (sub_thread.join(), sse_thread.join());
    Chain {
        replies,
        subs,
        sses,
        doms: page.map(|_| doms),
    }
}

/// `viewers` raw `/events` readers on one thread (poll(2)): for each update,
/// the time from sending it until the last viewer has it. The first update
/// only warms up. Also the gateway's RSS once they are all connected.
fn web_fanout(
    server: &common::Server,
    address: &str,
    gateway: &Child,
    viewers: usize,
    samples: usize,
    publish_port: u16,
) -> (Vec<Duration>, u64, usize) {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::sync::mpsc;
    let streams: Vec<std::net::TcpStream> = (0..viewers).map(|_| open_events(address)).collect();
    for stream in &streams {
        stream.set_nonblocking(true).expect("nonblocking");
    }
    let (tx, rx) = mpsc::channel::<(u64, Instant)>();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = std::sync::Arc::clone(&stop);
    let poller = thread::spawn(move || {
        let mut streams = streams;
        let mut fds: Vec<libc::pollfd> = streams
            .iter()
            .map(|s| libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // Per viewer: the next marker it has not seen, and the end of its last read.
        let mut next = vec![0u64; streams.len()];
        let mut tails = vec![String::new(); streams.len()];
        let mut reported = 0u64;
        let mut buffer = vec![0u8; 65536];
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            // SAFETY: `fds` is a valid array of pollfd for the streams we own.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50) };
            if ready <= 0 {
                continue;
            }
            for (k, fd) in fds.iter_mut().enumerate() {
                if fd.revents == 0 {
                    continue;
                }
                fd.revents = 0;
                while let Ok(n) = streams[k].read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    let text = format!("{}{}", tails[k], String::from_utf8_lossy(&buffer[..n]));
                    for marker in markers(&text, "bench-fan v") {
                        if marker == next[k] {
                            next[k] += 1;
                        }
                    }
                    let cut = text.len().saturating_sub(40);
                    let cut = (cut..text.len())
                        .find(|&c| text.is_char_boundary(c))
                        .unwrap_or(text.len());
                    tails[k] = text[cut..].to_owned();
                }
            }
            let everyone = next.iter().copied().min().unwrap_or(0);
            let now = Instant::now();
            while reported < everyone {
                if tx.send((reported, now)).is_err() {
                    return;
                }
                reported += 1;
            }
        }
    });
    let context = zmq::Context::new();
    let req = context.socket(zmq::REQ).expect("REQ");
    req.set_linger(0).expect("LINGER");
    req.set_rcvtimeo(10_000).expect("RCVTIMEO");
    req.connect(&server.endpoint).expect("connect");
    let mut times = Vec::with_capacity(samples);
    let (mut rss, mut subscribers) = (0, 0);
    for i in 0..=samples as u64 {
        let fraction = (i as f64 * 0.618_033_988_75).fract();
        thread::sleep(LIVE_SPREAD.mul_f64(fraction));
        let started = Instant::now();
        req.send(format!("bench: bench-fan v{i}").as_bytes(), 0)
            .expect("send");
        req.recv_bytes(0).expect("the update's reply");
        let last = loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok((n, at)) if n == i => break at,
                Ok(_) => {}
                Err(_) => panic!("change {i} did not reach every viewer"),
            }
        };
        match i {
            0 => (rss, subscribers) = (resident_kib(gateway), connections_to(publish_port)),
            _ => times.push(last - started),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    poller.join().expect("the poller");
    (times, rss, subscribers)
}

/// status_web: how soon a change is in a browser, and what 1 000 viewers cost.
fn web(s: &Settings, out: &mut String) {
    writeln!(out, "## The web board\n").ok();
    let samples = if s.smoke { 10 } else { 300 };
    let viewers = if s.smoke { 50 } else { 1_000 };
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("web.log");
    let server = ours(&[
        "--publish",
        "tcp://127.0.0.1:*",
        "--state",
        state.to_str().expect("UTF-8"),
    ]);
    let (address, gateway) = start_web(&server.endpoint);
    let idle_rss = resident_kib(&gateway.child);
    let Chain {
        replies,
        subs,
        sses,
        doms,
    } = web_chain(&server, &address, samples);
    let dom_row = match doms {
        Ok(times) => latency_cells(times),
        Err(why) => format!("n/a ({why}) | | |"),
    };
    writeln!(
        out,
        "A change on its way to a browser: from sending `bench: bench-dom vN` (one update at a \
         time, 0-10 ms apart; the server on its default `--fsync everysec`, publishing) until \
         each step has it. One `status_web`, one page.\n\n\
         | step | samples | p50 ms | p99 ms | max ms |\n| --- | --- | --- | --- | --- |\n\
         | the update's reply (REQ) | {} |\n\
         | a SUB socket on the server's publisher | {} |\n\
         | a raw reader of `status_web`'s `/events` | {} |\n\
         | the page's DOM in headless Chromium (a MutationObserver) | {dom_row} |\n",
        latency_cells(replies),
        latency_cells(subs),
        latency_cells(sses),
    )
    .ok();
    let publish_port: u16 = common::snapshot(&server.endpoint).header.publish[0]
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the publisher's port");
    let one = web_fanout(
        &server,
        &address,
        &gateway.child,
        1,
        samples / 3,
        publish_port,
    );
    let many = web_fanout(
        &server,
        &address,
        &gateway.child,
        viewers,
        samples / 3,
        publish_port,
    );
    writeln!(
        out,
        "Viewers: raw `/events` readers in the harness, on one thread (poll(2)). From sending \
         an update until the last viewer has it; the gateway's resident memory with them \
         connected (idle, before any viewer: {idle_rss} KiB), and the subscribers on the \
         server's publisher (established connections to its port).\n\n\
         | viewers | samples | p50 ms | p99 ms | max ms | gateway RSS KiB | subscribers |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n\
         | 1 | {} | {} | {} |\n\
         | {viewers} | {} | {} | {} |\n",
        latency_cells(one.0),
        one.1,
        one.2,
        latency_cells(many.0),
        many.1,
        many.2,
    )
    .ok();
}

// ---- many watchers, and restarts ----

/// The bare publisher: a PUB socket that, each time its REP control socket
/// asks, publishes the text it was sent, then answers. Prints both endpoints.
fn serve_floor_pub() {
    let context = zmq::Context::new();
    let publisher = context.socket(zmq::PUB).expect("PUB");
    publisher.set_linger(0).expect("LINGER");
    publisher.set_sndhwm(100_000).expect("SNDHWM");
    publisher.bind("tcp://127.0.0.1:*").expect("bind");
    let control = context.socket(zmq::REP).expect("REP");
    control.set_linger(0).expect("LINGER");
    control.bind("tcp://127.0.0.1:*").expect("bind");
    let endpoint = |s: &zmq::Socket| s.get_last_endpoint().expect("endpoint").expect("UTF-8");
    println!("{} {}", endpoint(&publisher), endpoint(&control));
    loop {
        // Killed by the harness when it is done.
        let message = control.recv_bytes(0).expect("control");
        publisher.send(&message, 0).expect("publish");
        control.send(&b"sent"[..], 0).expect("answer");
    }
}

/// `n` SUB sockets on `endpoint`, spread over several contexts (an I/O
/// thread each), polled by one thread: for each marker `vI` in order, the
/// time the last of them had it is sent on the channel.
struct Subscribers {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    arrivals: std::sync::mpsc::Receiver<(u64, Instant)>,
    /// How many have received anything at all: their subscription has reached
    /// the publisher (a PUB drops what it sends before that).
    heard: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Subscribers {
    const CONTEXTS: usize = 4;

    fn start(endpoint: &str, n: usize) -> Subscribers {
        use std::sync::atomic::{AtomicBool, Ordering};
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let (tx, arrivals) = std::sync::mpsc::channel();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let endpoint = endpoint.to_owned();
        let stop = std::sync::Arc::clone(&done);
        let heard = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let heard_count = std::sync::Arc::clone(&heard);
        let thread = thread::spawn(move || {
            let contexts: Vec<zmq::Context> =
                (0..Self::CONTEXTS).map(|_| zmq::Context::new()).collect();
            let sockets: Vec<zmq::Socket> = (0..n)
                .map(|k| {
                    let socket = contexts[k % Self::CONTEXTS].socket(zmq::SUB).expect("SUB");
                    socket.set_linger(0).expect("LINGER");
                    socket.set_rcvhwm(100_000).expect("RCVHWM");
                    socket.set_subscribe(b"").expect("subscribe");
                    socket.connect(&endpoint).expect("connect");
                    socket
                })
                .collect();
            let _ = ready_tx.send(());
            let mut next = vec![0u64; n];
            let mut spoke = vec![false; n];
            let mut reported = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut items: Vec<zmq::PollItem> = sockets
                    .iter()
                    .map(|s| s.as_poll_item(zmq::POLLIN))
                    .collect();
                if zmq::poll(&mut items, 50).unwrap_or(0) <= 0 {
                    continue;
                }
                let ready: Vec<usize> = (0..n).filter(|&k| items[k].is_readable()).collect();
                drop(items);
                for k in ready {
                    while let Ok(message) = sockets[k].recv_bytes(zmq::DONTWAIT) {
                        if !spoke[k] {
                            spoke[k] = true;
                            heard_count.fetch_add(1, Ordering::Relaxed);
                        }
                        let wanted = format!("bench-fan: v{}", next[k]);
                        if message.ends_with(wanted.as_bytes()) {
                            next[k] += 1;
                        }
                    }
                }
                let everyone = next.iter().copied().min().unwrap_or(0);
                let now = Instant::now();
                while reported < everyone {
                    let _ = tx.send((reported, now));
                    reported += 1;
                }
            }
        });
        ready.recv().expect("the subscribers connect");
        Subscribers {
            done,
            thread: Some(thread),
            arrivals,
            heard,
        }
    }

    /// Calls `poke` (something that publishes) every 100 ms until every
    /// subscriber has received something.
    fn warm_up(&self, n: usize, mut poke: impl FnMut()) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.heard.load(std::sync::atomic::Ordering::Relaxed) < n {
            assert!(
                Instant::now() < deadline,
                "subscribers never heard the publisher"
            );
            poke();
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// When every subscriber had change `i`.
    fn wait(&self, i: u64) -> Instant {
        loop {
            match self.arrivals.recv_timeout(Duration::from_secs(20)) {
                Ok((n, at)) if n == i => return at,
                Ok(_) => {}
                Err(_) => panic!("change {i} did not reach every subscriber"),
            }
        }
    }
}

impl Drop for Subscribers {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(child: &Child) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap_or_default();
    // After the command's closing parenthesis: state is field 3; utime, stime are 14, 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no memory effects.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) / per_second
}

/// `n` watchers that each poll with `request(k)` every `period`, spread
/// evenly, for `duration`, from one thread.
fn pollers_at_rest(
    endpoint: &str,
    n: usize,
    period: Duration,
    duration: Duration,
    request: &dyn Fn() -> Vec<u8>,
) {
    let context = zmq::Context::new();
    let sockets: Vec<zmq::Socket> = (0..n)
        .map(|_| {
            let socket = context.socket(zmq::REQ).expect("REQ");
            socket.set_linger(0).expect("LINGER");
            socket.connect(endpoint).expect("connect");
            socket
        })
        .collect();
    let start = Instant::now();
    let mut due: Vec<Instant> = (0..n)
        .map(|k| start + period.mul_f64(k as f64 / n as f64))
        .collect();
    let mut waiting = vec![false; n];
    while start.elapsed() < duration {
        let now = Instant::now();
        for k in 0..n {
            if !waiting[k] && due[k] <= now {
                sockets[k].send(request(), 0).expect("send");
                waiting[k] = true;
                due[k] += period;
            }
        }
        let mut items: Vec<zmq::PollItem> = sockets
            .iter()
            .map(|s| s.as_poll_item(zmq::POLLIN))
            .collect();
        let _ = zmq::poll(&mut items, 5);
        let ready: Vec<usize> = (0..n).filter(|&k| items[k].is_readable()).collect();
        drop(items);
        for k in ready {
            sockets[k].recv_bytes(0).expect("reply");
            waiting[k] = false;
        }
    }
}

/// 1 000 subscribers on the publisher against a bare PUB socket; 1 000
/// watchers polling at rest.
fn watchers(s: &Settings, out: &mut String) {
    writeln!(out, "## Many watchers\n").ok();
    let n = if s.smoke { 50 } else { 1_000 };
    let samples = if s.smoke { 5 } else { 200 };
    let server = ours(&["--publish", "tcp://127.0.0.1:*"]);
    let publish = common::snapshot(&server.endpoint).header.publish[0].clone();
    let rss_before = resident_kib(&server.child);
    let ours_subs = Subscribers::start(&publish, n);

    let floor = Spawned::start(
        Command::new(std::env::current_exe().expect("harness path")).arg("--serve-floor-pub"),
    );
    let line = floor.lines.next("the bare publisher's endpoints");
    let (floor_pub, floor_control) = line.split_once(' ').expect("two endpoints");
    let floor_subs = Subscribers::start(floor_pub, n);
    // Subscriptions travel to the publishers after the connect: warm both up.
    let context = zmq::Context::new();
    let req = |endpoint: &str| {
        let socket = context.socket(zmq::REQ).expect("REQ");
        socket.set_linger(0).expect("LINGER");
        socket.set_rcvtimeo(10_000).expect("RCVTIMEO");
        socket.connect(endpoint).expect("connect");
        socket
    };
    let (to_ours, to_floor) = (req(&server.endpoint), req(floor_control));
    // The server's heartbeat (every second) reaches every subscriber in time;
    // the bare publisher is asked to send something.
    ours_subs.warm_up(n, || {});
    floor_subs.warm_up(n, || {
        to_floor.send(&b"warm"[..], 0).expect("send");
        to_floor.recv_bytes(0).expect("sent");
    });
    let snapshot = common::snapshot(&server.endpoint);
    let mut seq = snapshot.header.seq;
    let (mut ours_times, mut floor_times, mut replies) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..=samples as u64 {
        let fraction = (i as f64 * 0.618_033_988_75).fract();
        thread::sleep(LIVE_SPREAD.mul_f64(fraction));
        // Ours: from sending the update until the last subscriber has it.
        let sent = Instant::now();
        to_ours
            .send(format!("bench-fan: v{i}").as_bytes(), 0)
            .expect("send");
        to_ours.recv_bytes(0).expect("reply");
        let replied = sent.elapsed();
        let last = ours_subs.wait(i);
        seq += 1;
        // The bare PUB: the same bytes, published when its control is answered.
        let notice = format!(
            "set {} {seq} {} bench-fan: v{i}",
            snapshot.header.epoch,
            common::now_ms()
        );
        let floor_sent = Instant::now();
        to_floor.send(notice.as_bytes(), 0).expect("send");
        to_floor.recv_bytes(0).expect("sent");
        let floor_last = floor_subs.wait(i);
        if i > 0 {
            ours_times.push(last.saturating_duration_since(sent));
            floor_times.push(floor_last.saturating_duration_since(floor_sent));
            replies.push(replied);
        }
    }
    let rss_with = resident_kib(&server.child);
    drop(ours_subs);
    drop(floor_subs);
    drop(floor);
    let p = |times: &mut Vec<Duration>, q: f64| {
        times.sort_unstable();
        percentile(times, q)
    };
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
    let (o50, o99) = (p(&mut ours_times, 0.5), p(&mut ours_times, 0.99));
    let (f50, f99) = (p(&mut floor_times, 0.5), p(&mut floor_times, 0.99));
    let (r50, r99) = (p(&mut replies, 0.5), p(&mut replies, 0.99));
    writeln!(
        out,
        "{n} SUB sockets in the harness ({} contexts, one polling thread), one update at a \
         time, {samples} samples, alternating: from sending the update to our server (which \
         answers, then publishes) or a request to the bare publisher's control socket (which \
         publishes the same bytes on a bare PUB socket, then answers) until the last \
         subscriber has the change. The update's own round trip: p50 {} ms, p99 {} ms.\n\n\
         | publisher | p50 ms | p99 ms | floor / ours (p50, p99) |\n| --- | --- | --- | --- |\n\
         | bare PUB socket (the floor) | {} | {} | |\n\
         | ours | {} | {} | {:.2}, {:.2} |\n\n\
         The server's resident memory: {rss_before} KiB with no subscriber, {rss_with} KiB with {n} \
         ({:.1} KiB each).\n",
        Subscribers::CONTEXTS,
        ms(r50),
        ms(r99),
        ms(f50),
        ms(f99),
        ms(o50),
        ms(o99),
        f50.as_secs_f64() / o50.as_secs_f64().max(1e-9),
        f99.as_secs_f64() / o99.as_secs_f64().max(1e-9),
        rss_with.saturating_sub(rss_before) as f64 / n as f64,
    )
    .ok();
    drop(server);

    // At rest: 1 000 watchers polling every 2 s; the server's CPU share.
    let period = Duration::from_secs(2);
    let duration = if s.smoke {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let state = prefilled_state(dir.path(), 100);
    writeln!(
        out,
        "{n} watchers each polling every 2 s (one thread, spread evenly) for {} s, a 100-entry \
         board that does not change: the server's CPU time over wall time.\n\n\
         | poll | server CPU |\n| --- | --- |",
        duration.as_secs()
    )
    .ok();
    for (what, since) in [
        ("`_:@since EPOCH SEQ` (our watcher)", true),
        ("`_:` (the original's)", false),
    ] {
        let server = ours(&["--state", state.to_str().expect("UTF-8"), "--fsync", "no"]);
        let snapshot = common::snapshot(&server.endpoint);
        let request =
            status_board::protocol::format_since(&snapshot.header.epoch, snapshot.header.seq);
        let before = cpu_seconds(&server.child);
        let started = Instant::now();
        pollers_at_rest(&server.endpoint, n, period, duration, &|| match since {
            true => request.clone().into_bytes(),
            false => b"_:".to_vec(),
        });
        let share = (cpu_seconds(&server.child) - before) / started.elapsed().as_secs_f64();
        writeln!(out, "| {what} | {:.1} % |", share * 100.0).ok();
    }
    writeln!(out).ok();
}

/// Start to first reply on a big state file, against reading the file once.
fn restart(s: &Settings, out: &mut String) {
    writeln!(out, "## Restart\n").ok();
    let dir = tempfile::tempdir().expect("temp dir");
    // An empty state file first: what starting costs before any replay.
    let sizes: &[usize] = if s.smoke {
        &[0, 10_000]
    } else {
        &[0, 100_000, 1_000_000]
    };
    let runs = if s.smoke { 1 } else { 5 };
    writeln!(
        out,
        "From spawning `status_server --state FILE` until a poll is answered, against `cat FILE > \
         /dev/null` (the file in the page cache for both), median of {runs} interleaved runs.\n\n\
         | entries | state file | cat | start to first reply | start / cat |\n| --- | --- | --- | --- | --- |"
    )
    .ok();
    for &n in sizes {
        let state = prefilled_state(dir.path(), n);
        let bytes = std::fs::metadata(&state).map(|m| m.len()).unwrap_or(0);
        let (mut cats, mut starts) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let started = Instant::now();
            let ok = Command::new("sh")
                .arg("-c")
                .arg(format!("cat '{}' > /dev/null", state.display()))
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cat");
            cats.push(started.elapsed());
            let started = Instant::now();
            let server = ours(&[
                "--state",
                state.to_str().expect("UTF-8"),
                "--fsync",
                "no",
                "--max-entries",
                &n.max(1).to_string(),
            ]);
            let reply = server.request(b"_:");
            starts.push(started.elapsed());
            assert!(reply.len() >= n * 30, "the whole board");
        }
        cats.sort_unstable();
        starts.sort_unstable();
        let (cat, start) = (cats[runs / 2], starts[runs / 2]);
        writeln!(
            out,
            "| {n} | {:.1} MB | {:.1} ms | {:.1} ms | {:.1}× |",
            bytes as f64 / 1e6,
            cat.as_secs_f64() * 1e3,
            start.as_secs_f64() * 1e3,
            start.as_secs_f64() / cat.as_secs_f64()
        )
        .ok();
    }
    writeln!(out).ok();
}

// ---- a hostile peer ----

/// What a peer that pipelines updates and polls and never reads costs:
/// the server's RSS before, at its peak, and once the peer has left.
fn unread_replies(board_entries: usize, attack: Duration) -> (usize, u64, u64, u64, u64) {
    let server = ours(&[]);
    let context = zmq::Context::new();
    let socket = context.socket(zmq::REQ).expect("REQ");
    socket.set_linger(0).expect("LINGER");
    socket.connect(&server.endpoint).expect("connect");
    let status = "s".repeat(4000);
    let mut board = 0;
    for i in 0..board_entries {
        socket
            .send(format!("n{i:04}: {status}").as_bytes(), 0)
            .expect("send");
        board = socket.recv_bytes(0).expect("the board").len();
    }
    let before = resident_kib(&server.child);
    let mut stream = common::zmtp::connect_from("127.0.0.2", server.port()).expect("connect");
    common::zmtp::handshake_null(&mut stream, "DEALER").expect("handshake");
    stream
        .set_write_timeout(Some(Duration::from_millis(100)))
        .expect("write timeout");
    let started = Instant::now();
    let (mut pending, mut offset, mut pairs, mut peak) = (Vec::new(), 0, 0u64, before);
    while started.elapsed() < attack {
        if offset == pending.len() {
            pairs += 1;
            pending = common::zmtp::request(format!("hostile: {pairs}").as_bytes());
            pending.extend(common::zmtp::request(b"_:"));
            offset = 0;
        }
        if let Ok(n) = std::io::Write::write(&mut stream, &pending[offset..]) {
            offset += n;
            if offset == pending.len() {
                // One pair a round: each reply could hold a board of its own.
                thread::sleep(Duration::from_micros(200));
            }
        }
        peak = peak.max(resident_kib(&server.child));
    }
    let reply = common::request(&server.endpoint, b"_:");
    let taken = String::from_utf8_lossy(&reply)
        .lines()
        .find_map(|l| l.strip_prefix("- hostile: ").and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = resident_kib(&server.child);
    while after > before + 4 * 1024 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        after = resident_kib(&server.child);
    }
    (board, before, peak, after, taken)
}

/// Fresh logins and established polls, timed while nobody floods and while
/// one address floods junk logins: (login p50, login max, poll p50, poll p99).
fn logins_under(
    flood: bool,
    logins: usize,
    attack: Duration,
) -> (Duration, Duration, Duration, Duration, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let users = dir.path().join("users");
    let hash = status_board::server::auth::hash_password(common::PASSWORD).expect("hash");
    common::write_private(&users, &format!("bench:{hash}\n"));
    let server = ours(&["--auth", users.to_str().expect("UTF-8")]);
    let context = zmq::Context::new();
    let established = context.socket(zmq::REQ).expect("REQ");
    established.set_plain_username(Some("bench")).expect("user");
    established
        .set_plain_password(Some(common::PASSWORD))
        .expect("password");
    established.set_linger(0).expect("LINGER");
    established.set_rcvtimeo(10_000).expect("RCVTIMEO");
    established.connect(&server.endpoint).expect("connect");
    let poll = |socket: &zmq::Socket| {
        let started = Instant::now();
        socket.send("_:", 0).expect("send");
        socket.recv_bytes(0).expect("the board");
        started.elapsed()
    };
    poll(&established);
    let flooding = flood
        .then(|| common::zmtp::Flood::start(server.port(), attack, common::zmtp::HangUp::AtOnce));
    let login = Some(("bench", common::PASSWORD));
    let mut login_times: Vec<Duration> = (0..logins)
        .map(|_| first_reply(&server.endpoint, login, 1))
        .collect();
    let mut polls = Vec::new();
    let started = Instant::now();
    while flooding
        .as_ref()
        .map_or(started.elapsed() < attack, common::zmtp::Flood::is_on)
    {
        polls.push(poll(&established));
    }
    let sent = flooding.map_or(0, common::zmtp::Flood::finish);
    login_times.sort_unstable();
    polls.sort_unstable();
    (
        login_times[login_times.len() / 2],
        login_times[login_times.len() - 1],
        percentile(&polls, 0.5),
        percentile(&polls, 0.99),
        sent,
    )
}

/// A hostile peer: what its attacks cost the server (tests/hostile.rs checks
/// the bounds; here are the figures).
fn hostile(s: &Settings, out: &mut String) {
    writeln!(
        out,
        "## A hostile peer
"
    )
    .ok();
    let attack = if s.smoke {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(15)
    };
    let (board, before, peak, after, taken) = unread_replies(500, attack);
    writeln!(
        out,
        "A peer on 127.0.0.2 pipelines `hostile: N` / `_:` pairs for {} s and never reads \
         its socket; the board is 500 entries of 4 KB statuses ({board} bytes).\n\n\
         | RSS before | RSS at the peak | growth | growth / board | after the peer left | updates taken |\n\
         | --- | --- | --- | --- | --- | --- |\n\
         | {before} KiB | {peak} KiB | {} KiB | {:.1} | {after} KiB | {taken} |\n",
        attack.as_secs(),
        peak.saturating_sub(before),
        (peak.saturating_sub(before) * 1024) as f64 / board.max(1) as f64,
    )
    .ok();
    let flood = Duration::from_secs(3);
    let logins = if s.smoke { 2 } else { 9 };
    writeln!(
        out,
        "Fresh PLAIN logins from 127.0.0.1 (connect to first reply, {logins} in a row) and the \
         polls of a client logged in before, with nobody flooding and while 127.0.0.2 floods \
         junk logins for {} s (connections that send a HELLO and hang up at once).\n\n\
         | | junk logins sent | login p50 | login max | poll p50 | poll p99 |\n\
         | --- | --- | --- | --- | --- | --- |",
        flood.as_secs()
    )
    .ok();
    for (what, flooding) in [("quiet", false), ("flood", true)] {
        let (login_p50, login_max, poll_p50, poll_p99, sent) =
            logins_under(flooding, logins, flood);
        writeln!(
            out,
            "| {what} | {sent} | {} µs | {} µs | {} µs | {} µs |",
            micros(login_p50),
            micros(login_max),
            micros(poll_p50),
            micros(poll_p99)
        )
        .ok();
    }
    writeln!(out).ok();
}

/// A part of the report: its name for `--only=NAME`, and what writes it.
type Section = (&'static str, fn(&Settings, &mut String));

fn main() {
    if let Some(file) =
        std::env::args().find_map(|a| a.strip_prefix("--serve-floor=").map(str::to_owned))
    {
        return serve_floor(&file);
    }
    if std::env::args().any(|a| a == "--serve-floor-pub") {
        return serve_floor_pub();
    }
    let s = Settings::from_args();
    let mut out = String::new();
    writeln!(
        out,
        "# status-board benchmarks{}\n\n{} cores; {} s per run after {} ms warm-up, median of {} interleaved runs.\n",
        if s.smoke { " (smoke run: figures mean nothing)" } else { "" },
        thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        s.duration.as_secs_f64(),
        s.warmup.as_millis(),
        s.repeats
    )
    .ok();
    let sections: [Section; 10] = [
        ("polls", polls),
        ("updates", updates),
        ("one-shot", one_shot),
        ("memory", memory),
        ("live", live),
        ("auth", auth),
        ("web", web),
        ("watchers", watchers),
        ("restart", restart),
        ("hostile", hostile),
    ];
    // `--only=polls,updates` or `--only=polls --only=updates`.
    let only: Vec<String> = std::env::args()
        .filter_map(|a| a.strip_prefix("--only=").map(str::to_owned))
        .flat_map(|list| list.split(',').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    // Each section is printed as it is done: a later failure keeps the earlier figures.
    print!("{out}");
    for (name, section) in sections {
        if only.is_empty() || only.iter().any(|o| o == name) {
            let started = Instant::now();
            let mut part = String::new();
            section(&s, &mut part);
            print!("{part}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            eprintln!("{name}: {:.1} s", started.elapsed().as_secs_f64());
        }
    }
}
