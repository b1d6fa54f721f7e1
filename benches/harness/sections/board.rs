//! Update and read the whole board: ours, where the reply to an update is the
//! whole board, against Redis doing the same work in one round trip (a Lua
//! script: `HSET`, then `HGETALL`); and `_:` against `HGETALL`.

use std::fmt::Write as _;

use crate::Settings;
use crate::load::{Requests, load, poll_request};
use crate::process::with_server_cpu;
use crate::sections::updates::middle_update;
use crate::stats::{Sample, interleaved};
use crate::targets::ours::{entry, ours_on, prefilled_state};
use crate::targets::redis::{BOARD_KEY, Redis, read_board};

/// One round trip that sets a field and returns the whole hash.
const SET_THEN_GET_ALL: &str =
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return redis.call('HGETALL', KEYS[1])";

pub fn whole_board(s: &Settings, out: &mut String) {
    writeln!(out, "## Update and read the whole board\n").ok();
    writeln!(
        out,
        "Requests/s, and latency p50 / p99 / max in µs, from K closed-loop clients; both \
         servers write each change to their file and leave the flush to the system (ours \
         `--fsync no`, Redis `appendfsync no`). Update: ours `user-N: update I` (each client \
         its own name in the middle of the board), whose reply is the whole board; Redis \
         `redis-benchmark -c K -r 1000000 EVAL \"{SET_THEN_GET_ALL}\" 1 {BOARD_KEY} user-N \
         \"update __rand_int__\"` (every client the same name in the middle, a random status). \
         Read: ours `_:`, Redis `HGETALL {BOARD_KEY}`. Reply sizes: ours the board as it \
         prints, Redis's RESP. CPU µs: the server process's CPU time (all its threads) per \
         request answered.\n\n\
         | board | K | request | ours req/s | ours µs | ours CPU µs | Redis req/s | Redis µs | Redis CPU µs | ours / Redis |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    .ok();
    let dir = tempfile::tempdir().expect("temp dir");
    for &entries in s.boards.iter().filter(|&&n| n >= 1_000) {
        let state = prefilled_state(dir.path(), entries);
        let server = ours_on(&state, &[]);
        let update = middle_update(entries);
        let ours_bytes = server.request(b"_:").len();
        let redis = Redis::start(Some("no")).filter(|redis| redis.load(entries, true).is_some());
        let redis_bytes = match redis.as_ref().map(|r| read_board(r.port)) {
            Some(Ok((bytes, n))) if n == entries => format!("{bytes} B"),
            Some(other) => panic!("Redis's board is not the benchmark board: {other:?}"),
            None => "n/a".into(),
        };
        let middle = entry(entries / 2).0;
        let eval = [
            "-r",
            "1000000",
            "EVAL",
            SET_THEN_GET_ALL,
            "1",
            BOARD_KEY,
            &middle,
            "update __rand_int__",
        ];
        let hgetall = ["HGETALL", BOARD_KEY];
        let works: [(&str, &Requests, &[&str]); 2] = [
            ("update", &update, &eval),
            ("read", &poll_request, &hgetall),
        ];
        for (work, request, redis_args) in works {
            for &clients in &s.clients {
                let ours_run = || {
                    with_server_cpu(&server.child, || {
                        load(&server.endpoint, clients, request, s)
                    })
                };
                let redis_run = || {
                    redis
                        .as_ref()
                        .map_or(Sample::NONE, |r| r.benchmark(clients, redis_args, s))
                };
                let samples = interleaved(&[&ours_run, &redis_run], s.repeats);
                writeln!(
                    out,
                    "| {entries} (ours {ours_bytes} B, Redis {redis_bytes}) | {clients} | {work} | {} | {} | {} | {} | {} |",
                    samples[0].cells(),
                    samples[0].cpu_cell(),
                    samples[1].cells(),
                    samples[1].cpu_cell(),
                    samples[0].ratio(&samples[1], 2)
                )
                .ok();
            }
        }
    }
    writeln!(out).ok();
}
