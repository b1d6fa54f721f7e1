//! The modes that post one update at a time: one-shot, clear, piped, interactive.

use std::io::{self, BufRead};

use rustyline::error::ReadlineError;

use crate::protocol::{self, ExtendedReply, ProtocolError};

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

    pub(super) fn piped(&mut self) -> Result<(), RunError> {
        let shutdown = self.shutdown;
        let mut lines = io::stdin().lock().lines();
        // Nothing is owed while waiting for the next line: Ctrl-C ends it there.
        while let Some(line) =
            shutdown.exit_if_signalled_during(EXIT_INTERRUPTED.into(), || lines.next())
        {
            let board = self.ask(&self.update(&line.map_err(RunError::Stdin)?))?;
            if !self.options.quiet {
                self.show(&board, true)?;
            }
        }
        Ok(())
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
