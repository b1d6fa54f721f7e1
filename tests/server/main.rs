//! The real `status_server`, spoken to over ZeroMQ: the serve loop in this
//! process where the loop is what is tested, the binary where its console,
//! signals, command line or memory are. One file a subject:
//!
//! - `requests`: what the server answers, and what it refuses;
//! - `resources`: memory and descriptors under large messages and many clients;
//! - `console`: its log, signals, start-up errors and `--hash-password`;
//! - `help`: `--help`, completions, the man page and the README's commands.

#[path = "../common/mod.rs"]
mod common;

mod console;
mod help;
mod requests;
mod resources;
