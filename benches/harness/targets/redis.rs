//! Redis, when installed: `redis-server` in a directory of the harness's,
//! loaded with the benchmark board, driven by `redis-benchmark` and
//! `redis-cli`, and read by a small RESP reader of our own.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::Settings;
use crate::common;
use crate::load::REPLY_BOUND;
use crate::process::{Spawned, have, output_within, wait_for, with_server_cpu};
use crate::stats::Sample;
use crate::targets::ours::entry;

/// The hash that holds the benchmark board, one field a name.
pub const BOARD_KEY: &str = "board";

/// How long one `redis-cli` call may take (loading a million entries included).
const CLI_BOUND: Duration = Duration::from_secs(120);

/// A running `redis-server`, killed on drop.
pub struct Redis {
    server: Spawned,
    pub port: u16,
    _dir: Option<tempfile::TempDir>,
}

impl Redis {
    /// Whether the server and both tools are installed.
    pub fn installed() -> bool {
        have("redis-server") && have("redis-benchmark") && have("redis-cli")
    }

    /// A server in a fresh directory; `appendfsync` as Redis names it, or
    /// `None` for no append-only file at all.
    pub fn start(appendfsync: Option<&str>) -> Option<Redis> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut redis = match appendfsync {
            Some(policy) => Redis::start_in(
                dir.path(),
                &["--appendonly", "yes", "--appendfsync", policy],
            ),
            None => Redis::start_in(dir.path(), &["--appendonly", "no"]),
        }?;
        redis._dir = Some(dir);
        Some(redis)
    }

    /// A server on a free port in `dir`, never saving a snapshot on its own,
    /// with `args`. Returns once it says it is ready to accept connections,
    /// which it says once what `dir` holds is loaded.
    pub fn start_in(dir: &Path, args: &[&str]) -> Option<Redis> {
        if !Redis::installed() {
            return None;
        }
        let port = common::free_port();
        let server = Spawned::start(
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", ""])
                .arg("--dir")
                .arg(dir)
                .args(args),
        );
        wait_for(&server.lines, "Ready to accept connections");
        Some(Redis {
            server,
            port,
            _dir: None,
        })
    }

    /// The server process.
    pub fn child(&self) -> &std::process::Child {
        &self.server.child
    }

    /// Waits for a line of the server's log.
    pub fn wait_for_log(&self, wanted: &str) {
        wait_for(&self.server.lines, wanted);
    }

    /// `redis-cli` with `args` against this server: its output.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        output_within(
            Command::new("redis-cli")
                .args(["-p", &self.port.to_string()])
                .args(args),
            b"",
            CLI_BOUND,
        )
    }

    /// Loads `n` entries of the benchmark board through `redis-cli --pipe`:
    /// as one hash (`HSET board NAME STATUS`), or as plain keys (`SET`).
    pub fn load(&self, n: usize, hash: bool) -> Option<()> {
        let output = output_within(
            Command::new("redis-cli").args(["-p", &self.port.to_string(), "--pipe"]),
            &load_commands(n, hash),
            CLI_BOUND,
        )?;
        output.contains("errors: 0").then_some(())
    }

    /// `redis-benchmark -c CLIENTS ARGS`, sized to run about the set duration:
    /// its throughput and latencies, and the server's CPU time per request
    /// over the sizing runs and the run itself; or [`Sample::NONE`] if it failed.
    pub fn benchmark(&self, clients: usize, args: &[&str], s: &Settings) -> Sample {
        let port = self.port.to_string();
        let run = |n: u64| -> Option<Sample> {
            let bound = s.duration * 10 + Duration::from_secs(60);
            let csv = output_within(
                Command::new("redis-benchmark")
                    .args(["-p", &port, "--csv", "-c", &clients.to_string()])
                    .args(["-n", &n.to_string()])
                    .args(args),
                b"",
                bound,
            )?;
            Some(Sample {
                requests: n,
                ..parse_csv(&csv)?
            })
        };
        let sized = || -> Option<Sample> {
            // A first guess, then one of about 50 ms, then the run itself.
            let mut first = run(50.max(4 * clients as u64))?;
            if first.rps > 1_000.0 {
                let second = run((first.rps * 0.05) as u64)?;
                first = Sample {
                    requests: first.requests + second.requests,
                    ..second
                };
            }
            let sample = run((first.rps * s.duration.as_secs_f64()).max(50.0) as u64)?;
            Some(Sample {
                requests: first.requests + sample.requests,
                ..sample
            })
        };
        with_server_cpu(self.child(), || sized().unwrap_or(Sample::NONE))
    }
}

/// The figures of redis-benchmark's `--csv` output:
/// `"test","rps","avg","min","p50","p95","p99","max"`, latencies in ms.
fn parse_csv(csv: &str) -> Option<Sample> {
    let line = csv.lines().rev().find(|l| !l.trim().is_empty())?;
    let fields: Vec<f64> = line
        .rsplit("\",\"")
        .take(7)
        .map(|f| f.trim_matches('"').parse().ok())
        .collect::<Option<_>>()?;
    // Reversed: max, p99, p95, p50, min, avg, rps.
    let ms = |v: f64| Duration::from_secs_f64(v / 1e3);
    (fields.len() == 7).then(|| Sample {
        rps: fields[6],
        p50: ms(fields[3]),
        p99: ms(fields[1]),
        max: ms(fields[0]),
        requests: 0,
        server_cpu: None,
    })
}

/// RESP for `redis-cli --pipe`: one command per entry of the benchmark board.
fn load_commands(n: usize, hash: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let bulk = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(format!("${}\r\n{s}\r\n", s.len()).as_bytes());
    };
    for i in 0..n {
        let (name, status) = entry(i);
        if hash {
            out.extend_from_slice(b"*4\r\n");
            bulk(&mut out, "HSET");
            bulk(&mut out, BOARD_KEY);
        } else {
            out.extend_from_slice(b"*3\r\n");
            bulk(&mut out, "SET");
        }
        bulk(&mut out, &name);
        bulk(&mut out, &status);
    }
    out
}

/// `HGETALL board` on a fresh connection to `port`, the whole reply read:
/// its size in bytes and its number of entries (name and status pairs).
pub fn read_board(port: u16) -> Result<(usize, usize), String> {
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(REPLY_BOUND))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "*2\r\n$7\r\nHGETALL\r\n${}\r\n{BOARD_KEY}\r\n",
        BOARD_KEY.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    // Read in big chunks and skimmed in place: the reader should cost next
    // to nothing beside the server it times (a million entries are two
    // million strings).
    let mut reply = Skim::default();
    let mut chunk = vec![0; 1 << 20];
    loop {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("the connection closed {} bytes in", reply.bytes));
        }
        if let Some(strings) = reply.feed(&chunk[..n])? {
            return Ok((reply.bytes, strings / 2));
        }
    }
}

/// An array of bulk strings in RESP, read as it arrives: only the headers
/// are parsed, the strings skipped.
#[derive(Default)]
struct Skim {
    /// Bytes taken so far.
    bytes: usize,
    /// The array's length, once its header is read.
    strings: Option<usize>,
    /// Strings whose header is read so far.
    started: usize,
    /// Bytes of the current string (and its CRLF) still to skip.
    skip: usize,
    /// A header line cut by the end of a chunk.
    partial: Vec<u8>,
}

impl Skim {
    /// Takes the next bytes; the array's length once it is complete.
    fn feed(&mut self, mut data: &[u8]) -> Result<Option<usize>, String> {
        self.bytes += data.len();
        loop {
            let skipped = self.skip.min(data.len());
            (self.skip, data) = (self.skip - skipped, &data[skipped..]);
            if self.skip == 0 && self.strings == Some(self.started) {
                return match data.is_empty() {
                    true => Ok(self.strings),
                    false => Err("more bytes than the reply".into()),
                };
            }
            let Some(end) = data.iter().position(|&b| b == b'\n') else {
                self.partial.extend_from_slice(data);
                return Ok(None);
            };
            let kind = match self.strings {
                None => b'*',
                Some(_) => b'$',
            };
            let number = match self.partial.is_empty() {
                true => header(&data[..end], kind),
                false => {
                    self.partial.extend_from_slice(&data[..end]);
                    let number = header(&self.partial, kind);
                    self.partial.clear();
                    number
                }
            }?;
            data = &data[end + 1..];
            match self.strings {
                None => self.strings = Some(number),
                Some(_) => {
                    self.skip = number + 2; // and its CRLF
                    self.started += 1;
                }
            }
        }
    }
}

/// The number in a RESP header line `KIND NUMBER [CR]` (`*` an array's
/// length, `$` a bulk string's); anything else (an error such as
/// `-LOADING …`) is the error.
fn header(line: &[u8], kind: u8) -> Result<usize, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.strip_prefix(&[kind])
        .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok())
        .ok_or_else(|| {
            format!(
                "expected {}N, got {:?}",
                kind as char,
                String::from_utf8_lossy(line)
            )
        })
}

/// Redis's arguments to start from the snapshot file (`dump.rdb`).
pub const FROM_RDB: &[&str] = &["--appendonly", "no"];

/// Redis's arguments to start from the append-only file, kept without an RDB
/// preamble (its base file is commands, not a snapshot).
pub const FROM_AOF: &[&str] = &[
    "--appendonly",
    "yes",
    "--aof-use-rdb-preamble",
    "no",
    "--appendfsync",
    "no",
];

/// The benchmark board of `n` entries as Redis keeps it on disk, in a
/// directory of its own: `dump.rdb`, and `appendonlydir/` rewritten once
/// without an RDB preamble (`HMSET` commands of up to 64 fields).
pub struct Persisted {
    pub dir: tempfile::TempDir,
    pub rdb_bytes: u64,
    pub aof_bytes: u64,
}

impl Persisted {
    pub fn write(n: usize) -> Option<Persisted> {
        let dir = tempfile::tempdir().expect("temp dir");
        // No rewrite of its own while loading: the one below is the only one.
        let args = [FROM_AOF, &["--auto-aof-rewrite-percentage", "0"]].concat();
        let redis = Redis::start_in(dir.path(), &args)?;
        if n > 0 {
            redis.load(n, true)?;
        }
        redis.cli(&["BGREWRITEAOF"])?;
        redis.wait_for_log("Background AOF rewrite finished successfully");
        redis.cli(&["SAVE"])?;
        drop(redis);
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
        let aof_bytes = std::fs::read_dir(dir.path().join("appendonlydir"))
            .ok()?
            .filter_map(Result::ok)
            .map(|file| size(&file.path()))
            .sum();
        Some(Persisted {
            rdb_bytes: size(&dir.path().join("dump.rdb")),
            aof_bytes,
            dir,
        })
    }
}
