//! Updates: from K clients at each durability against Redis `SET`, and on a
//! big board (every reply the whole board) against the floor.

use std::fmt::Write as _;

use crate::Settings;
use crate::load::{load, update_request};
use crate::stats::{Sample, interleaved};
use crate::targets::floor::Floor;
use crate::targets::ours::{ours, ours_on, prefilled_state};
use crate::targets::redis::Redis;

pub fn updates(s: &Settings, out: &mut String) {
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
            let ours_run = || load(&server.endpoint, clients, &update_request, s);
            let redis_run = || {
                redis
                    .as_ref()
                    .map_or(Sample::NONE, |r| r.benchmark(clients, &["-t", "set"], s))
            };
            let samples = interleaved(&[&ours_run, &redis_run], s.repeats);
            let (us, theirs) = (samples[0], samples[1]);
            let redis_cell = match theirs.rps.is_nan() {
                true => "n/a".into(),
                false => format!("{:.0}", theirs.rps),
            };
            writeln!(
                out,
                "| {policy} | {clients} | {} | {redis_cell} | {} |",
                us.cells(),
                us.ratio(&theirs, 2)
            )
            .ok();
        }
    }
    writeln!(out).ok();
    big_board_updates(s, out);
}

/// Makes client K's Nth update of a name in the middle of an `entries`-entry
/// board, with a status whose length changes (`update 9`, `update 10`): the
/// lines after it move.
pub fn middle_update(entries: usize) -> impl Fn(usize, u64) -> Vec<u8> {
    let middle = entries / 2;
    move |k: usize, i: u64| format!("user-{:05}: update {i}", middle + k).into_bytes()
}

/// Updates on 1 000- and 10 000-entry boards, where every reply is the whole
/// board: against the floor answering a reply of the same size.
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
        let server = ours_on(&state, &[]);
        let request = middle_update(entries);
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
                "| {entries} ({} B) | {clients} | {} | {} | {} |",
                reply.len(),
                samples[0].cells(),
                samples[1].cells(),
                samples[1].ratio(&samples[0], 2)
            )
            .ok();
        }
    }
    writeln!(out).ok();
}
