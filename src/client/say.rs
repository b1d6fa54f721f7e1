//! What the client says beside its boards: lines on stderr, and the news of
//! its helper threads (a courier's delivery, a refresher's refresh).
//!
//! Whatever is said here may quote a server (an `error:` reply, a malformed
//! line) or the environment (an endpoint, a user name): it goes through
//! [`visible`], the one sanitising place, so none of it drives the terminal.

use std::fmt;

use crate::visible::visible;

/// Writes `line` on stderr with every control character in it shown as an
/// escape.
pub fn eprintln_visible(line: impl fmt::Display) {
    eprintln!("{}", visible(&line.to_string()));
}

/// Where a helper thread's news goes: above the prompt, plain stderr, or
/// nowhere (`--quiet`). What it is given is already [`visible`].
pub(super) type Say = Box<dyn FnMut(String) + Send>;
