//! The server's console: the original's `received` lines on stdout,
//! everything else on stderr, one line each. With `--log-time` every line
//! but the first (`Waiting for clients…`, which scripts wait for) starts
//! with an RFC 3339 time, and updates say the peer's address.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

static TIMESTAMPS: AtomicBool = AtomicBool::new(false);

/// Turns the timestamps (and the peers' addresses) on or off.
pub(crate) fn set_detailed(on: bool) {
    TIMESTAMPS.store(on, Ordering::Relaxed);
}

/// Whether lines carry times and peers (`--log-time`).
pub(crate) fn detailed() -> bool {
    TIMESTAMPS.load(Ordering::Relaxed)
}

/// The start of a line: the time and a space, or nothing.
pub(crate) fn stamp() -> String {
    match detailed() {
        true => format!("{} ", humantime::format_rfc3339_millis(SystemTime::now())),
        false => String::new(),
    }
}

/// `eprintln!` for the server's log: stamped with `--log-time`.
macro_rules! log_err {
    ($($arg:tt)*) => {
        eprintln!("{}{}", $crate::server::log::stamp(), format_args!($($arg)*))
    };
}
pub(crate) use log_err;
