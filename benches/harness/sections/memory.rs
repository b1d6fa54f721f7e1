//! Resident memory of a 100 000-entry board: ours against Redis.

use std::fmt::Write as _;

use crate::Settings;
use crate::process::resident_kib;
use crate::targets::ours::{ours, prefilled_state};
use crate::targets::redis::Redis;

/// Redis's resident memory (KiB) and `used_memory` (bytes), empty and
/// holding the benchmark board as one hash or as plain keys.
fn redis_memory(n: usize, hash: bool) -> Option<((u64, u64), (u64, u64))> {
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
    let empty = (resident_kib(redis.child()), used(&redis));
    redis.load(n, hash)?;
    Some((empty, (resident_kib(redis.child()), used(&redis))))
}

pub fn memory(s: &Settings, out: &mut String) {
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
