//! The modes that post one update at a time: one-shot, clear, piped, interactive.

use std::io::{self, BufRead};

use rustyline::error::ReadlineError;

use crate::protocol::{self, DEFAULT_MAX_REQUEST, ExtendedReply, POLL_REQUEST, ProtocolError};

use super::courier::{Courier, Say};
use super::mirror::Mirror;
use super::{ClientError, EXIT_INTERRUPTED, RunError, Session, eprintln_visible};

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
                    eprintln_visible(format_args!(
                        "status_client: line {number} refused: {message}"
                    ));
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
        // Started at the first outage: it sends what was typed meanwhile.
        let mut courier: Option<Courier> = None;
        loop {
            // A dumb terminal reads in cooked mode, where Ctrl-C is a signal, not a key.
            let read = self
                .shutdown
                .exit_if_signalled_during(0, || editor.readline(&prompt));
            let line = match read {
                Ok(line) => line,
                // Ctrl-D and Ctrl-C at the prompt are how a person leaves.
                Err(ReadlineError::Eof | ReadlineError::Interrupted) => {
                    if let Some(request) = courier.as_ref().and_then(Courier::holds) {
                        eprintln!("status_client: not sent: {request:?}");
                    }
                    return Ok(());
                }
                Err(e) => return Err(RunError::Terminal(e)),
            };
            let request = match line.trim().is_empty() {
                // An empty line shows the board again: it does not wipe one's status.
                true => POLL_REQUEST.to_owned(),
                false => {
                    // History is a convenience; a failure to record a line is not an error.
                    let _ = editor.add_history_entry(line.as_str());
                    self.update(&line)
                }
            };
            let is_update = request != POLL_REQUEST;
            if let Some(courier) = courier.as_ref().filter(|c| c.holds().is_some())
                && is_update
            {
                courier.hand(request);
                eprintln!(
                    "status_client: kept {line:?} in place of the one waiting; \
                     it is sent when the server is back"
                );
                continue;
            }
            match self.ask(&request) {
                Ok(board) => self.show(&board, true)?,
                Err(refused @ RunError::Refused { .. }) => eprintln_visible(refused),
                Err(RunError::Client(ClientError::Interrupted)) => return Ok(()),
                Err(RunError::Client(
                    err @ (ClientError::NoReply { .. } | ClientError::NothingListens { .. }),
                )) => {
                    eprintln_visible(format_args!("status_client: {err}"));
                    if is_update {
                        eprintln!(
                            "status_client: your status is kept and sent when the server is back \
                             (type another to replace it; Ctrl-C to leave)"
                        );
                        let courier = courier.get_or_insert_with(|| {
                            Courier::start(
                                self.link.client.sibling(),
                                printer(&mut editor),
                                self.options.timeout,
                            )
                        });
                        courier.hand(request);
                    }
                }
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

/// Where a courier's news goes: above the prompt through the line editor,
/// or where it cannot drive the terminal (TERM=dumb, some ptys) to stderr:
/// not stdout, which the session holds locked.
fn printer(editor: &mut rustyline::DefaultEditor) -> Say {
    use rustyline::ExternalPrinter;
    match editor.create_external_printer() {
        Ok(mut printer) => Box::new(move |text: String| {
            let _ = printer.print(text);
        }),
        Err(_) => Box::new(|text: String| eprintln!("{text}")),
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
