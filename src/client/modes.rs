//! The client's modes: which one the options ask for ([`run`]), and the
//! ones that post one update at a time: one-shot, clear, piped,
//! interactive. Watching is `watcher.rs`'s.

use std::io::{self, BufRead, IsTerminal};

use rustyline::error::ReadlineError;

use crate::protocol::{self, ExtendedReply, POLL_REQUEST, ProtocolError};
use crate::shutdown::{Leave, Shutdown};

use super::courier::{self, Courier, Parcel};
use super::link::{Away, Link};
use super::login;
use super::mirror::Mirror;
use super::options::{Mode, Options};
use super::refresh::Own;
use super::request::Client;
use super::request_error::RequestError;
use super::say::{Say, eprintln_visible};
use super::session::{RunError, Session};
use super::watcher;

/// Runs the mode the options ask for, until done, interrupted or failed.
pub fn run(options: &Options, shutdown: &Shutdown) -> Result<(), RunError> {
    let mode = options.mode().map_err(RunError::Usage)?;
    let login = login::resolve(
        options.user.as_deref(),
        options.server_key.as_deref(),
        &options.name,
        options.endpoints.current(),
    )?;
    let client = Client::new(
        options.endpoints.clone(),
        options.timeout,
        options.retries,
        login,
    );
    let link = Link::new(client, "status_client");
    let mut session = Session {
        link,
        options,
        shutdown,
        out: io::stdout().lock(),
        shown: 0,
        at_terminal: io::stdin().is_terminal(),
        relogged: false,
        own: Own::default(),
        refresher: None,
    };
    let result = match mode {
        Mode::OneShot(text) => session.one_shot(&text),
        Mode::Clear => session.clear(),
        Mode::Piped => session.piped(),
        Mode::Interactive => session.interactive(),
        Mode::Watch => {
            drop(session.out);
            watcher::watch(options, session.link, shutdown).map_err(|err| match err {
                RunError::Request(RequestError::LoginWanted { endpoint }) => {
                    RunError::WatchWantsLogin { endpoint }
                }
                other => other,
            })
        }
    };
    match result {
        // `status_client _ | head`: the reader has gone, which is not our failure.
        Err(RunError::Stdout(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Most bytes of one piped line kept: a stream with no newline must not
/// fill the memory. A longer line is refused (cut, with `--sanitize`).
const MAX_LINE: usize = 1 << 20;

impl Session<'_> {
    pub(super) fn one_shot(&mut self, text: &str) -> Result<(), RunError> {
        let board = self.ask_at_terminal(&self.update(text))?;
        if self.options.quiet {
            return Ok(());
        }
        self.show(&board, false)
    }

    /// Each line of stdin is one update. A line the server refuses, or that
    /// cannot be posted (not UTF-8, empty), is said on stderr with its
    /// number and the stream goes on (a log pipe must not die at its first
    /// coloured line); the exit code says whether any was refused.
    pub(super) fn piped(&mut self) -> Result<(), RunError> {
        let shutdown = self.shutdown;
        let mut input = io::stdin().lock();
        let mut refused = 0;
        let mut number = 0;
        // Nothing is owed while waiting for the next line: Ctrl-C ends it there.
        while let Some(line) = shutdown
            .exit_if_signalled_during(Leave::Interrupted, || read_line(&mut input, MAX_LINE))
            .map_err(RunError::Stdin)?
        {
            number += 1;
            let text = match self.line_text(line) {
                Ok(text) => text,
                Err(why) => {
                    refused += 1;
                    eprintln_visible(format_args!("status_client: line {number} refused: {why}"));
                    continue;
                }
            };
            let request = self.update(&text);
            let own = self.own.clone();
            let mut posting = own.posting();
            // A pipe is a long-running feed: it waits out a server restart,
            // unless --retries says how long to wait.
            let answered = match self.options.retries_given {
                true => self.ask(&request),
                false => self.ask_patiently(&request),
            };
            if answered.is_ok() {
                posting.posted(&text);
            }
            drop(posting);
            match answered {
                Ok(board) => {
                    if !self.options.quiet {
                        self.show(&board, true)?;
                    }
                    // --quiet: the refreshes go on, unsaid.
                    let quiet = self.options.quiet;
                    self.keep_fresh(
                        || match quiet {
                            true => Box::new(|_| {}),
                            false => Box::new(|text| eprintln!("{text}")),
                        },
                        "until the end of input",
                    )?;
                }
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

    /// A piped line as the status to post, or why it cannot be.
    fn line_text(&self, line: Line) -> Result<String, String> {
        let sanitize = self.options.sanitize;
        let text = match String::from_utf8(line.bytes) {
            Ok(text) => text,
            // Converted, as --sanitize converts what does not show.
            Err(e) if sanitize => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let byte = e.as_bytes().get(at).copied().unwrap_or(0);
                return Err(format!(
                    "not UTF-8 (byte {} is 0x{byte:02X}); --sanitize posts it with U+FFFD in its place",
                    at + 1
                ));
            }
        };
        if line.cut && !sanitize {
            return Err(format!(
                "longer than {} MiB; --sanitize posts its start",
                MAX_LINE >> 20
            ));
        }
        let text = self.options.prepared(&text);
        self.options.check_not_blank(&text)?;
        Ok(text)
    }

    /// The original's prompt, with line editing. An empty or blank line
    /// shows the board again and posts nothing; a status typed while the
    /// server is away (or back with logins turned on or off) is kept and
    /// sent by a courier; a server that wants a password gets it asked for.
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
                .exit_if_signalled_during(Leave::Done, || editor.readline(&prompt));
            let line = match read {
                Ok(line) => line,
                // Ctrl-D and Ctrl-C at the prompt are how a person leaves.
                Err(ReadlineError::Eof | ReadlineError::Interrupted) => {
                    if let Some(parcel) = courier.as_ref().and_then(Courier::holds) {
                        eprintln!("status_client: not sent: {:?}", parcel.request);
                    }
                    return Ok(());
                }
                Err(e) => return Err(RunError::Terminal(e)),
            };
            let text = self.options.prepared(&line);
            // An empty line shows the board again: it does not wipe one's
            // status (--clear does, and --set "" --allow-empty posts one).
            let parcel = match text.trim().is_empty() {
                true => None,
                false => {
                    // History is a convenience; a failure to record a line is not an error.
                    let _ = editor.add_history_entry(line.as_str());
                    Some(Parcel {
                        request: self.update(&text),
                        text,
                    })
                }
            };
            if let Some(parcel) = &parcel
                && let Some(courier) = courier.as_ref().filter(|c| c.holds().is_some())
            {
                courier.hand(parcel.clone(), None);
                eprintln!(
                    "status_client: kept {line:?} in place of the one waiting; \
                     it is sent when the server takes it"
                );
                continue;
            }
            let answered = self.post_at_terminal(parcel.as_ref());
            if std::mem::take(&mut self.relogged) {
                // The courier and the refresher log in as before: started
                // again. What the courier held goes now, with the new login.
                self.refresher = None;
                if let Some(held) = courier.take().and_then(|c| c.holds()) {
                    let fresh = Courier::start(
                        self.link.client.sibling(),
                        printer(&mut editor),
                        self.own.clone(),
                    )
                    .map_err(RunError::thread("courier"))?;
                    fresh.hand(held, None);
                    courier = Some(fresh);
                }
            }
            match self.after_a_post(answered, parcel, &mut courier, &mut editor) {
                // Ctrl-C while a request waits: a person leaving, as at the prompt.
                Err(RunError::Request(RequestError::Interrupted)) => return Ok(()),
                other => other?,
            }
        }
    }

    /// Sends a typed status (or a poll, for `None`) under the lock of the
    /// client's own status, asking for a password if the server wants one.
    fn post_at_terminal(&mut self, parcel: Option<&Parcel>) -> Result<String, RunError> {
        let Some(parcel) = parcel else {
            return self.ask_at_terminal(POLL_REQUEST);
        };
        let own = self.own.clone();
        let mut posting = own.posting();
        let answered = self.ask_at_terminal(&parcel.request);
        if answered.is_ok() {
            posting.posted(&parcel.text);
        }
        answered
    }

    /// Shows what a typed line brought: the board, a refusal, or a server
    /// away, in which case a typed status goes to the courier.
    fn after_a_post(
        &mut self,
        answered: Result<String, RunError>,
        parcel: Option<Parcel>,
        courier: &mut Option<Courier>,
        editor: &mut rustyline::DefaultEditor,
    ) -> Result<(), RunError> {
        let err = match answered {
            Ok(board) => {
                self.show(&board, true)?;
                if parcel.is_some() {
                    self.keep_fresh(|| printer(editor), "Ctrl-D to stop")?;
                }
                return Ok(());
            }
            Err(refused @ RunError::Refused { .. }) => {
                eprintln_visible(refused);
                return Ok(());
            }
            Err(RunError::Request(err)) => err,
            Err(e) => return Err(e),
        };
        // Passwords refused at the prompt: the person may try again (Enter)
        // rather than lose what they typed.
        let typed_wrong =
            matches!(err, RequestError::LoginRefused { .. }) && self.can_ask_password();
        let away = self
            .link
            .away(&err)
            .or(typed_wrong.then_some(Away::LoginRefused));
        let Some(away) = away else {
            return Err(err.into());
        };
        eprintln_visible(format_args!("status_client: {}", away.says(&err)));
        if let Some(parcel) = parcel {
            eprintln!("status_client: {}", courier::what_now(away));
            let courier = match courier {
                Some(courier) => courier,
                None => courier.insert(
                    Courier::start(
                        self.link.client.sibling(),
                        printer(editor),
                        self.own.clone(),
                    )
                    .map_err(RunError::thread("courier"))?,
                ),
            };
            courier.hand(parcel, Some(away));
        }
        Ok(())
    }

    pub(super) fn clear(&mut self) -> Result<(), RunError> {
        let request = protocol::format_clear(&self.options.name);
        let reply = self.ask_at_terminal(&request)?;
        let snapshot = match protocol::parse_extended_reply(reply.as_bytes()) {
            Ok(ExtendedReply::Snapshot(snapshot)) => snapshot,
            Ok(ExtendedReply::Board(_)) => {
                return Err(RunError::Unsupported(format!(
                    "the server at {} speaks only the original protocol, which cannot remove a status; nothing was changed",
                    self.link.endpoint()
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

/// One line of input as read: its bytes without the line end, and whether
/// it was cut at the most kept.
struct Line {
    bytes: Vec<u8>,
    cut: bool,
}

/// The next line of `input`, without its `\n` or `\r\n`, at most `max`
/// bytes of it kept (the rest is read and dropped); `None` at the end.
fn read_line(input: &mut impl BufRead, max: usize) -> io::Result<Option<Line>> {
    let mut line = Line {
        bytes: Vec::new(),
        cut: false,
    };
    let mut read_any = false;
    loop {
        let buffer = match input.fill_buf() {
            Ok(buffer) => buffer,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buffer.is_empty() {
            break;
        }
        read_any = true;
        let (chunk, ends) = match buffer.iter().position(|&b| b == b'\n') {
            Some(at) => (&buffer[..at], Some(at + 1)),
            None => (buffer, None),
        };
        let room = max.saturating_sub(line.bytes.len());
        line.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        line.cut |= chunk.len() > room;
        let used = ends.unwrap_or(buffer.len());
        input.consume(used);
        if ends.is_some() {
            break;
        }
    }
    if !read_any {
        return Ok(None);
    }
    if line.bytes.last() == Some(&b'\r') {
        line.bytes.pop();
    }
    Ok(Some(line))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_as_bytes_without_their_end_and_bounded() {
        let mut input = io::BufReader::with_capacity(4, &b"ok\r\ncaf\xe9\n0123456789\nlast"[..]);
        let mut next = || {
            read_line(&mut input, 6)
                .expect("read")
                .map(|l| (l.bytes, l.cut))
        };
        assert_eq!(next(), Some((b"ok".to_vec(), false)));
        assert_eq!(next(), Some((b"caf\xe9".to_vec(), false)));
        assert_eq!(
            next(),
            Some((b"012345".to_vec(), true)),
            "cut, the rest dropped"
        );
        assert_eq!(
            next(),
            Some((b"last".to_vec(), false)),
            "no newline at the end"
        );
        assert_eq!(next(), None);
    }
}
