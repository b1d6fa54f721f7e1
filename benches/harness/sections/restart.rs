//! Restart: from start to the whole board served, ours from its state file
//! against Redis from its snapshot (RDB) and from its append-only file (AOF).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::Settings;
use crate::process::cpu_time;
use crate::stats::median;
use crate::targets::ours::{ours_on, prefilled_state};
use crate::targets::redis::{FROM_AOF, FROM_RDB, Persisted, Redis, read_board};

/// How long a start took, and the CPU time the server had used by then.
#[derive(Clone, Copy)]
struct Start {
    wall: Duration,
    cpu: Duration,
}

/// From spawning our server on `state` (`n` entries) until a client has the
/// whole board.
fn ours_start(state: &Path, n: usize) -> Start {
    let started = Instant::now();
    let server = ours_on(state, &["--max-entries", &n.max(1).to_string()]);
    let reply = server.request(b"_:");
    let wall = started.elapsed();
    assert!(reply.len() >= n * 30, "the whole board");
    Start {
        wall,
        cpu: cpu_time(&server.child),
    }
}

/// From spawning Redis in `dir` with `args` until a client has the whole
/// board (`HGETALL board`, every byte of the reply read).
fn redis_start(dir: &Path, args: &[&str], n: usize) -> Start {
    let started = Instant::now();
    let redis = Redis::start_in(dir, args).expect("redis-server starts");
    let (_, entries) = read_board(redis.port).expect("the whole board from Redis");
    let wall = started.elapsed();
    assert_eq!(entries, n, "Redis's whole board");
    Start {
        wall,
        cpu: cpu_time(redis.child()),
    }
}

/// The medians of the wall and CPU times of some starts.
fn medians(starts: &[Start]) -> Start {
    Start {
        wall: median(starts.iter().map(|s| s.wall).collect()),
        cpu: median(starts.iter().map(|s| s.cpu).collect()),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// `wall (CPU)` in ms, one cell.
fn cell(start: Start) -> String {
    format!("{} ({})", ms(start.wall), ms(start.cpu))
}

/// `theirs / ours` for wall and CPU time, one cell.
fn ratio(theirs: Start, ours: Start) -> String {
    let times = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    format!(
        "{:.1}× ({:.1}×)",
        times(theirs.wall, ours.wall),
        times(theirs.cpu, ours.cpu)
    )
}

pub fn restart(s: &Settings, out: &mut String) {
    writeln!(out, "## Restart\n").ok();
    let dir = tempfile::tempdir().expect("temp dir");
    // An empty board first: what starting costs before any replay.
    let sizes: &[usize] = if s.smoke {
        &[0, 10_000]
    } else {
        &[0, 100_000, 1_000_000]
    };
    let runs = if s.smoke { 1 } else { 5 };
    writeln!(
        out,
        "From spawning the server until a client has read the whole board: ours \
         (`status_server --state FILE`, `_:`) against Redis (`HGETALL board`, one hash of the \
         same entries) loading its snapshot (`dump.rdb`, `appendonly no`) or its append-only \
         file (rewritten once with `aof-use-rdb-preamble no`: commands, no snapshot inside). \
         Each server is ready when it says so (`Waiting for clients`, `Ready to accept \
         connections`), then asked once. Wall time in ms, and in brackets the CPU time the \
         server process had used by then. The files in the page cache; median of {runs} \
         interleaved runs.\n\n\
         | entries | state file, RDB, AOF | ours ms | Redis from RDB ms | Redis from AOF ms | RDB / ours | AOF / ours |\n\
         | --- | --- | --- | --- | --- | --- | --- |"
    )
    .ok();
    for &n in sizes {
        let state = prefilled_state(dir.path(), n);
        let state_bytes = std::fs::metadata(&state).map_or(0, |m| m.len());
        let redis = Persisted::write(n);
        let (mut ours, mut rdb, mut aof) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            ours.push(ours_start(&state, n));
            if let Some(redis) = &redis {
                rdb.push(redis_start(redis.dir.path(), FROM_RDB, n));
                aof.push(redis_start(redis.dir.path(), FROM_AOF, n));
            }
        }
        let ours = medians(&ours);
        let row = match &redis {
            Some(redis) => {
                let (rdb, aof) = (medians(&rdb), medians(&aof));
                format!(
                    "{}, {}, {} | {} | {} | {} | {} | {}",
                    mb(state_bytes),
                    mb(redis.rdb_bytes),
                    mb(redis.aof_bytes),
                    cell(ours),
                    cell(rdb),
                    cell(aof),
                    ratio(rdb, ours),
                    ratio(aof, ours)
                )
            }
            None => format!(
                "{} | {} | n/a (no redis-server) | | |",
                mb(state_bytes),
                cell(ours)
            ),
        };
        writeln!(out, "| {n} | {row} |").ok();
    }
    writeln!(out).ok();
}
