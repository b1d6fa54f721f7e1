//! The durable board with the real server: restarts, kill -9, damage, locks.
//! One file a subject:
//!
//! - `crashes`: kill -9 and signals under load, compactions cut short;
//! - `damage`: a state file torn, flipped or half compacted;
//! - `state`: where the state lives, who holds it, starts that fail;
//! - `writers`: the load (concurrent writers) and what survived of it.

#[path = "../common/mod.rs"]
mod common;

mod crashes;
mod damage;
mod state;
mod writers;

use std::path::PathBuf;

/// The state file in `dir`.
fn state_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("board.log")
}
