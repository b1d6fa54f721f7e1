//! What the user asked for, the mode it means, and each status as it is
//! posted (`--sanitize`, `--allow-empty`).

use std::io::{self, IsTerminal};
use std::time::Duration;

use crate::protocol::{self, DEFAULT_MAX_REQUEST, Field, Limits, POLL_NAME};

use super::endpoints::Endpoints;

/// What the user asked for on the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server's ZeroMQ endpoints: the first, then the next when one
    /// does not answer.
    pub endpoints: Endpoints,
    /// Your name, or `_` to watch.
    pub name: String,
    /// One status to post (one-shot mode).
    pub set: Option<String>,
    /// Remove your entry (one-shot).
    pub clear: bool,
    /// Time between polls when watching.
    pub interval: Duration,
    /// Stop watching after this many boards.
    pub count: Option<u64>,
    /// Print boards as JSON.
    pub json: bool,
    /// Print nothing on success (one-shot and piped).
    pub quiet: bool,
    /// Wait for one reply.
    pub timeout: Duration,
    /// Tries per request.
    pub retries: u32,
    /// The original's first line, `Connecting to port '2345' of host '127.0.0.1'.`
    pub greeting: String,
    /// Whether `--retries` was given: then a pipe gives up after them too,
    /// instead of waiting for the server to come back.
    pub retries_given: bool,
    /// Who to log in as (`--user`); see the `login` module for the defaults.
    pub user: Option<String>,
    /// The server's CURVE public key (`--server-key`): log in by key.
    pub server_key: Option<String>,
    /// Clean each status before posting it (`--sanitize`): piped lines,
    /// `--set`, typed lines.
    pub sanitize: bool,
    /// Post an empty or blank status (`--allow-empty`) instead of refusing it.
    pub allow_empty: bool,
}

/// The ways the client runs, chosen from the name, `--set` and stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mode {
    /// A name and a terminal: prompt, send each line, show the board.
    Interactive,
    /// A name and a pipe or file: each line is an update, no prompts.
    Piped,
    /// `--set TEXT`: one update, the board, exit.
    OneShot(String),
    /// `--clear`: remove one's entry, the board, exit.
    Clear,
    /// The name `_`: show the board every interval.
    Watch,
}

/// What the client says of an empty status it does not post.
const EMPTY_REFUSED: &str =
    "the status is empty: --clear removes yours, and --allow-empty posts an empty one";

impl Options {
    /// Picks the mode, refusing combinations that mean nothing (said as
    /// the usage error it is).
    pub(super) fn mode(&self) -> Result<Mode, String> {
        let usage = |text: &str| Err(text.to_owned());
        if self.name == POLL_NAME {
            if self.set.is_some() || self.clear {
                return usage(
                    "the name '_' only reads the board; give your own name to --set or --clear a status",
                );
            }
            if self.quiet {
                return usage("--quiet would hide every board the watcher shows");
            }
            return Ok(Mode::Watch);
        }
        if self.count.is_some() {
            return usage("--count only applies to watching (the name '_')");
        }
        // The server's own limits may be tighter; these rules hold for every server.
        if let Err(err) = protocol::check_name(&self.name, &Limits::UNLIMITED) {
            return Err(format!("cannot use the name {:?}: {err}", self.name));
        }
        if self.clear {
            return Ok(Mode::Clear);
        }
        match &self.set {
            Some(text) => {
                let text = self.prepared(text);
                protocol::check_line(&text, Field::Status)
                    .map_err(|e| format!("cannot --set that text: {e}"))?;
                self.check_not_blank(&text)
                    .map_err(|why| format!("cannot --set that text: {why}"))?;
                Ok(Mode::OneShot(text))
            }
            None if io::stdin().is_terminal() => Ok(Mode::Interactive),
            None => Ok(Mode::Piped),
        }
    }

    /// A status as it is posted: cleaned with `--sanitize`.
    pub(super) fn prepared(&self, text: &str) -> String {
        match self.sanitize {
            true => sanitize(text, room_for_status(&self.name)),
            false => text.to_owned(),
        }
    }

    /// Refuses an empty or blank status unless `--allow-empty`: legal on the
    /// wire (the original posts it), but far more often a slip than meant.
    pub(super) fn check_not_blank(&self, text: &str) -> Result<(), &'static str> {
        match text.trim().is_empty() && !self.allow_empty {
            true => Err(EMPTY_REFUSED),
            false => Ok(()),
        }
    }
}

/// Bytes a status of `name` may take in a request of the default size limit.
fn room_for_status(name: &str) -> usize {
    // `NAME: STATUS`: the name, the colon and the space.
    DEFAULT_MAX_REQUEST.saturating_sub(name.len() + 2)
}

/// A log line made fit to post (`--sanitize`): control sequences (colours,
/// cursor moves) and other control characters dropped, tabs as spaces, cut
/// at a character boundary to `room` bytes.
fn sanitize(line: &str, room: usize) -> String {
    let mut out = String::with_capacity(line.len().min(room));
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // ESC [ … final byte (CSI: colours, cursor), ESC ] … BEL or ESC \
            // (OSC: a window title), or ESC and one more character.
            '\u{1b}' => match chars.next() {
                Some('[') => while chars.next().is_some_and(|c| !('@'..='~').contains(&c)) {},
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => {
                if out.len() + c.len_utf8() > room {
                    break;
                }
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_the_text_of_a_coloured_log_line() {
        assert_eq!(
            sanitize("\u{1b}[1;32mPASS\u{1b}[0m\tbuild #42\r", 100),
            "PASS build #42"
        );
        assert_eq!(sanitize("a\u{0}b\u{7f}c", 100), "abc");
        assert_eq!(sanitize("\u{1b}]0;title\u{7}x", 100), "x");
        assert_eq!(sanitize("\u{1b}]0;title\u{1b}\\y", 100), "y");
        assert_eq!(sanitize("héllo", 2), "h", "cut at a character boundary");
        assert_eq!(sanitize(&"x".repeat(5000), 4000).len(), 4000);
    }
}
