//! The modes that post one update at a time: one-shot, clear, piped, interactive.

use std::io::{self, BufRead};

use rustyline::error::ReadlineError;

use crate::protocol::{self, DEFAULT_MAX_REQUEST, ExtendedReply, POLL_REQUEST, ProtocolError};

use super::mirror::Mirror;
use super::{ClientError, EXIT_INTERRUPTED, RunError, Session};

impl Session<'_> {
    pub(super) fn one_shot(&mut self, text: &str) -> Result<(), RunError> {
        let board = self.ask(&self.update(text))?;
        if self.options.quiet {
            return Ok(());
        }
        self.show(&board, false)
    }

    /// Each line of stdin is one update. A line the server refuses is said on
    /// stderr and the stream goes on (a log pipe must not die at its first
    /// coloured line); the exit code says whether any was refused.
    pub(super) fn piped(&mut self) -> Result<(), RunError> {
        let shutdown = self.shutdown;
        let mut lines = io::stdin().lock().lines();
        let mut refused = 0;
        let mut number = 0;
        // Nothing is owed while waiting for the next line: Ctrl-C ends it there.
        while let Some(line) =
            shutdown.exit_if_signalled_during(EXIT_INTERRUPTED.into(), || lines.next())
        {
            number += 1;
            let line = line.map_err(RunError::Stdin)?;
            let text = match self.options.sanitize {
                true => sanitize(&line, self.room_for_status()),
                false => line,
            };
            let request = self.update(&text);
            // A pipe is a long-running feed: it waits out a server restart,
            // unless --retries says how long to wait.
            let answered = match self.options.retries_given {
                true => self.ask(&request),
                false => self.ask_patiently(&request),
            };
            match answered {
                Ok(board) if !self.options.quiet => self.show(&board, true)?,
                Ok(_) => {}
                Err(RunError::Refused { message, .. }) => {
                    refused += 1;
                    eprintln!("status_client: line {number} refused: {message}");
                }
                Err(e) => return Err(e),
            }
        }
        match refused {
            0 => Ok(()),
            _ => Err(RunError::LinesRefused {
                refused,
                lines: number,
            }),
        }
    }

    /// Bytes a status may take in a request of the default size limit.
    fn room_for_status(&self) -> usize {
        // `NAME: STATUS`: the name, the colon and the space.
        DEFAULT_MAX_REQUEST.saturating_sub(self.options.name.len() + 2)
    }

    pub(super) fn interactive(&mut self) -> Result<(), RunError> {
        self.greet()?;
        let mut editor = rustyline::DefaultEditor::new().map_err(RunError::Terminal)?;
        let prompt = format!("{}: ", self.options.name);
        loop {
            // A dumb terminal reads in cooked mode, where Ctrl-C is a signal, not a key.
            let read = self
                .shutdown
                .exit_if_signalled_during(0, || editor.readline(&prompt));
            let line = match read {
                Ok(line) => line,
                // Ctrl-D and Ctrl-C at the prompt are how a person leaves.
                Err(ReadlineError::Eof | ReadlineError::Interrupted) => return Ok(()),
                Err(e) => return Err(RunError::Terminal(e)),
            };
            if line.trim().is_empty() {
                // An empty line shows the board again: it does not wipe one's status.
                match self.ask(POLL_REQUEST) {
                    Ok(board) => self.show(&board, true)?,
                    Err(RunError::Client(ClientError::Interrupted)) => return Ok(()),
                    Err(e) => return Err(e),
                }
                continue;
            }
            // History is a convenience; a failure to record a line is not an error.
            let _ = editor.add_history_entry(line.as_str());
            match self.ask(&self.update(&line)) {
                Ok(board) => self.show(&board, true)?,
                Err(refused @ RunError::Refused { .. }) => eprintln!("{refused}"),
                Err(RunError::Client(ClientError::Interrupted)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) fn clear(&mut self) -> Result<(), RunError> {
        let request = protocol::format_clear(&self.options.name);
        let reply = self.ask(&request)?;
        let snapshot = match protocol::parse_extended_reply(reply.as_bytes()) {
            Ok(ExtendedReply::Snapshot(snapshot)) => snapshot,
            Ok(ExtendedReply::Board(_)) => {
                return Err(RunError::Unsupported(format!(
                    "the server at {} speaks only the original protocol, which cannot remove a status; nothing was changed",
                    self.options.endpoint
                )));
            }
            Ok(_) => {
                return Err(self.bad_reply(ProtocolError::Malformed {
                    what: "reply to a clear",
                    text: reply.clone(),
                }));
            }
            Err(source) => return Err(self.bad_reply(source)),
        };
        if self.options.quiet {
            return Ok(());
        }
        self.show(&Mirror::new(snapshot).plain(), false)
    }
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
