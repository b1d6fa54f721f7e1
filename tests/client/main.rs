//! The real `status_client` against the real `status_server` (and against
//! servers that are not), in every mode. One file a subject:
//!
//! - `modes`: one-shot, piped, watching, JSON, and at a prompt;
//! - `input`: what it refuses to send, and `--sanitize`;
//! - `network`: servers that are silent, gone, restarted, not ZeroMQ, or
//!   not a server's main endpoint;
//! - `hostile`: what a hostile server sends must not drive the terminal;
//! - `failover`: several servers of one board, and moving on from one that
//!   is dead, silent or without quorum;
//! - `stale`: a gateway that cannot reach its cluster, said and unsaid.

#[path = "../common/mod.rs"]
mod common;

mod failover;
mod fake_server;
mod hostile;
mod input;
mod modes;
mod network;
mod stale;

use fake_server::answering_with;
