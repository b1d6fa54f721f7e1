//! One whole client process: ours against `redis-cli`.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::Settings;
use crate::process::median_run;
use crate::stats::micros;
use crate::targets::ours::ours;
use crate::targets::redis::Redis;

pub fn one_shot(s: &Settings, out: &mut String) {
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
