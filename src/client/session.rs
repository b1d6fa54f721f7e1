//! One run of the client: its connection, its output, and how a request
//! and its reply are made into a board or a [`RunError`]. The modes that
//! drive it are in `modes.rs`.

use std::io::{self, StdoutLock, Write};

use rustyline::error::ReadlineError;

use crate::protocol::{self, ERROR_PREFIX, ProtocolError};
use crate::shutdown::Shutdown;

use super::follow::FollowError;
use super::link::Link;
use super::login::{self, Login, LoginError};
use super::options::Options;
use super::refresh::{Own, Refresher};
use super::render;
use super::request_error::RequestError;
use super::say::{Say, eprintln_visible};

/// Why a run of the client stopped short of success. The program picks
/// its exit code from it (`status_client`'s `--help` lists them).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Arguments that cannot work together, or a name the protocol cannot carry.
    #[error("{0}")]
    Usage(String),
    /// Piped mode: the server refused some lines (each said as it came).
    #[error("refused {refused} of {lines} lines")]
    LinesRefused {
        /// How many.
        refused: u64,
        /// Of how many read.
        lines: u64,
    },
    /// The server answered `error: …`.
    #[error("the server refused {request:?}: {message}")]
    Refused {
        /// What we sent.
        request: String,
        /// What the server said after `error: `.
        message: String,
    },
    /// The server cannot do what was asked: it speaks only the original protocol.
    #[error("{0}")]
    Unsupported(String),
    /// The reply is neither a board nor an error.
    #[error("the reply from {endpoint} is not a status board")]
    BadReply {
        /// Who sent it.
        endpoint: String,
        /// What is wrong with it.
        source: ProtocolError,
    },
    /// No reply, a bad endpoint, a login refused, or an interruption.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// No login could be made of what was given, or Ctrl-C at its prompt.
    #[error(transparent)]
    Login(#[from] LoginError),
    /// Standard input could not be read (or was not UTF-8).
    #[error("cannot read standard input")]
    Stdin(#[source] io::Error),
    /// Standard output could not be written.
    #[error("cannot write standard output")]
    Stdout(#[source] io::Error),
    /// The system could not start a thread beside the prompt (the courier,
    /// the refresher).
    #[error("cannot start the {what} thread")]
    Thread {
        /// Which.
        what: &'static str,
        /// What the system said.
        source: io::Error,
    },
    /// The line editor could not use the terminal.
    #[error("cannot use the terminal")]
    Terminal(#[source] ReadlineError),
    /// A watcher with no login at an endpoint that wants one.
    #[error(
        "{endpoint} wants a login, and a watcher has none: watch the server's read-only \
         endpoint instead (its --anonymous one, which it names at start: \"read-only without \
         login on: ...\"; or ask its operator), or log in as a read-only user with --user"
    )]
    WatchWantsLogin {
        /// The endpoint asked.
        endpoint: String,
    },
}

impl RunError {
    /// A thread named `what` that the system could not start.
    pub(super) fn thread(what: &'static str) -> impl FnOnce(io::Error) -> RunError {
        move |source| RunError::Thread { what, source }
    }
}

impl From<FollowError> for RunError {
    fn from(err: FollowError) -> RunError {
        match err {
            FollowError::Request(err) => RunError::Request(err),
            FollowError::BadReply { endpoint, source } => RunError::BadReply { endpoint, source },
        }
    }
}

/// Characters of a refused request said back: enough to know which, not a
/// 5 KB status in full.
const SHOWN_OF_A_REQUEST: usize = 60;

/// `text`, or its first `max` characters and `…`.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// One run of the client: its connection, output, and the boards shown so far.
pub(super) struct Session<'a> {
    pub(super) link: Link,
    pub(super) options: &'a Options,
    pub(super) shutdown: &'a Shutdown,
    pub(super) out: StdoutLock<'static>,
    pub(super) shown: u64,
    /// Whether stdin is a terminal: a person is there to type a password.
    pub(super) at_terminal: bool,
    /// A password was typed since the courier and refresher were started:
    /// they log in as before, and are started again.
    pub(super) relogged: bool,
    /// The status this client posted, kept fresh on a server with a TTL.
    pub(super) own: Own,
    /// Started at the first status posted (interactive and piped).
    pub(super) refresher: Option<Refresher>,
}

/// Passwords refused in a row at the prompt before the client gives up (as sudo).
const PASSWORD_TRIES: u32 = 3;

impl Session<'_> {
    /// Sends one request; an `error:` reply becomes [`RunError::Refused`].
    pub(super) fn ask(&mut self, request: &str) -> Result<String, RunError> {
        let reply = self.link.request(request, self.shutdown)?;
        self.board_or_refusal(request, &reply)
    }

    /// Like [`Session::ask`], but on a terminal a server that wants a login
    /// we did not give, or refuses ours, is said and the password asked for
    /// (as `--user`, `STATUS_BOARD_USER` or the NAME), and the request sent
    /// again: what was typed is never dropped for want of a login. Three
    /// refusals in a row end it.
    pub(super) fn ask_at_terminal(&mut self, request: &str) -> Result<String, RunError> {
        let mut refused = 0;
        loop {
            let err = match self.ask(request) {
                Err(RunError::Request(
                    err @ (RequestError::LoginWanted { .. } | RequestError::LoginRefused { .. }),
                )) if self.can_ask_password() => err,
                other => return other,
            };
            let user = match self.link.client.login() {
                Some(Login::Plain { user, .. }) => user.clone(),
                _ => self
                    .options
                    .user
                    .clone()
                    .unwrap_or_else(|| self.options.name.clone()),
            };
            match &err {
                RequestError::LoginRefused { .. } => {
                    refused += 1;
                    if refused >= PASSWORD_TRIES {
                        return Err(err.into());
                    }
                    eprintln_visible(format_args!("status_client: {err}"));
                }
                _ => eprintln_visible(format_args!(
                    "status_client: {} wants a login: log in as '{user}' (--user for another)",
                    self.link.endpoint()
                )),
            }
            let password = login::ask_password(&user, self.link.endpoint())?;
            self.link
                .client
                .set_login(Some(Login::Plain { user, password }));
            self.relogged = true;
        }
    }

    /// Whether a password typed now could help: a person at a terminal, and
    /// no login by key (which a password cannot replace).
    pub(super) fn can_ask_password(&self) -> bool {
        self.at_terminal && !matches!(self.link.client.login(), Some(Login::Curve { .. }))
    }

    /// Starts keeping the status just posted fresh, if not yet: `say` is
    /// where the refresher speaks, `to_stop` how the user stops it.
    pub(super) fn keep_fresh(
        &mut self,
        say: impl FnOnce() -> Say,
        to_stop: &'static str,
    ) -> Result<(), RunError> {
        if self.refresher.is_none() {
            let refresher = Refresher::start(
                self.link.client.sibling(),
                &self.options.name,
                self.own.clone(),
                say(),
                to_stop,
            )
            .map_err(RunError::thread("refresher"))?;
            self.refresher = Some(refresher);
        }
        Ok(())
    }

    /// Like [`Session::ask`], but a server that stops answering is said once
    /// and asked again until it is back (a watcher, a pipe: long-running
    /// feeds); `Interrupted` on Ctrl-C.
    pub(super) fn ask_patiently(&mut self, request: &str) -> Result<String, RunError> {
        let reply = self.request_patiently(request)?;
        self.board_or_refusal(request, &reply)
    }

    /// Sends `request` until some reply comes: silence is said once, on
    /// stderr, and so is the server's return.
    fn request_patiently(&mut self, request: &str) -> Result<Vec<u8>, RunError> {
        loop {
            if let Some(reply) = self.link.round(request, self.shutdown)? {
                return Ok(reply);
            }
        }
    }

    /// A reply as the board, or the server's refusal of `request`.
    ///
    /// Bytes that are not UTF-8 (only a foreign server sends them: ours and
    /// the original take UTF-8 only) show as U+FFFD: the rest of the board
    /// is still worth reading.
    fn board_or_refusal(&self, request: &str, reply: &[u8]) -> Result<String, RunError> {
        let text = String::from_utf8_lossy(reply);
        match text.strip_prefix(ERROR_PREFIX) {
            Some(message) => Err(RunError::Refused {
                request: cut(request, SHOWN_OF_A_REQUEST),
                message: message.to_owned(),
            }),
            None => Ok(text.into_owned()),
        }
    }

    /// Prints a board: as JSON, as the original's numbered block, or bare.
    pub(super) fn show(&mut self, board: &str, numbered: bool) -> Result<(), RunError> {
        let written = if self.options.json {
            let entries = protocol::parse_board(board).map_err(|source| self.bad_reply(source))?;
            render::write_json(&mut self.out, &entries)
        } else if numbered {
            render::write_block(&mut self.out, self.shown, board)
        } else {
            render::write_board(&mut self.out, board)
        };
        written
            .and_then(|()| self.out.flush())
            .map_err(RunError::Stdout)?;
        self.shown += 1;
        Ok(())
    }

    /// The original's first line, for the modes a person watches.
    pub(super) fn greet(&mut self) -> Result<(), RunError> {
        if self.options.json {
            return Ok(());
        }
        writeln!(self.out, "{}", self.options.greeting).map_err(RunError::Stdout)
    }

    pub(super) fn update(&self, text: &str) -> String {
        protocol::format_update(&self.options.name, text)
    }

    pub(super) fn bad_reply(&self, source: ProtocolError) -> RunError {
        RunError::BadReply {
            endpoint: self.link.endpoint().to_owned(),
            source,
        }
    }
}
