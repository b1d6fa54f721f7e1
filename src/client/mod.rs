//! `status_client`: post a status, or watch the board.
//!
//! Output is the Python original's (`----------------- N` and the board) or,
//! with `--json`, one JSON document per board. Each mode ends with a [`RunError`]
//! whose [`RunError::exit_code`] is the process exit code.
//!
//! - `request`: one request, one reply, never an endless wait (Lazy Pirate).
//! - `login`: who to log in as on a server with `--auth`, and the password.
//! - `modes`: one-shot, clear, piped and interactive: one update at a time.
//! - `link`: a connection that rides out the server's absence (and its
//!   restarts with or without logins), for long-running feeds.
//! - `courier`: interactive mode's delivery of a status typed while the server was away.
//! - `refresh`: a typer's status kept from expiring on a server with `--ttl`.
//! - `follow`: keeping a copy of the board in step: pushed changes or polls
//!   (also `status_web`'s).
//! - `watcher`: the watch mode: the board on a terminal, or as the original prints it.
//! - `mirror`: a watcher's copy of the board (the Clone pattern).
//! - `render`: a board as the original's block, as JSON, or as a screen.
//!
//! Whatever came from a server (a board, an `error:` reply, a line quoted in
//! an error) or from the environment (an endpoint) reaches the terminal
//! [`visible`](crate::visible::visible): boards through `render`, what is
//! said on stderr through [`eprintln_visible`].

mod courier;
pub mod follow;
pub mod link;
mod login;
pub mod mirror;
mod modes;
mod probe;
mod refresh;
pub mod render;
pub mod request;
mod watcher;

use std::fmt;
use std::io::{self, IsTerminal, StdoutLock, Write};
use std::time::Duration;

use rustyline::error::ReadlineError;

use crate::cli::EXIT_INTERRUPTED;
use crate::protocol::{self, ERROR_PREFIX, Field, Limits, POLL_NAME, ProtocolError};
use crate::shutdown::Shutdown;
use crate::visible::visible;

pub use login::{Login, PASSWORD_ENV, SERVER_KEY_ENV, USER_ENV, curve_keygen};

use refresh::{Own, Refresher};
pub use request::{ClientError, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS};

use link::Link;
use request::Client;

/// Exit code when the server answered `error: …` or with something that is not a board.
pub const EXIT_REFUSED: u8 = 1;
/// Exit code for bad arguments, a name the protocol cannot carry, or unreadable input.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the server did not answer any try.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code when the server refused the login, or wants one we did not give.
pub const EXIT_LOGIN: u8 = 4;

/// What the user asked for on the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// ZeroMQ endpoint of the server.
    pub endpoint: String,
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

/// The four ways the client runs, chosen from the name, `--set` and stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
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

/// Why the client stopped short of success; [`RunError::exit_code`] says how to exit.
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
    /// No reply, a bad endpoint, or an interruption.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Standard input could not be read (or was not UTF-8).
    #[error("cannot read standard input")]
    Stdin(#[source] io::Error),
    /// Standard output could not be written.
    #[error("cannot write standard output")]
    Stdout(#[source] io::Error),
    /// The line editor could not use the terminal.
    #[error("cannot use the terminal")]
    Terminal(#[source] ReadlineError),
    /// Ctrl-C at a prompt that is not the status prompt (the password's).
    #[error("interrupted")]
    Interrupted,
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
    /// The process exit code for this error (documented in `--help`).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Usage(_) | RunError::Stdin(_) | RunError::Terminal(_) => EXIT_USAGE,
            RunError::Client(ClientError::Connect { .. }) => EXIT_USAGE,
            RunError::Client(
                ClientError::NoReply { .. }
                | ClientError::NothingListens { .. }
                | ClientError::NotZeroMq { .. }
                | ClientError::Publisher { .. },
            ) => EXIT_UNREACHABLE,
            RunError::Client(ClientError::Interrupted) | RunError::Interrupted => EXIT_INTERRUPTED,
            RunError::Client(
                ClientError::LoginRefused { .. }
                | ClientError::LoginWanted { .. }
                | ClientError::LoginUnwanted { .. },
            )
            | RunError::WatchWantsLogin { .. } => EXIT_LOGIN,
            RunError::Refused { .. }
            | RunError::LinesRefused { .. }
            | RunError::Unsupported(_)
            | RunError::BadReply { .. }
            | RunError::Client(ClientError::Socket { .. })
            | RunError::Stdout(_) => EXIT_REFUSED,
        }
    }
}

impl Options {
    /// Picks the mode, refusing combinations that mean nothing.
    fn mode(&self) -> Result<Mode, RunError> {
        let usage = |text: &str| Err(RunError::Usage(text.to_owned()));
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
            return Err(RunError::Usage(format!(
                "cannot use the name {:?}: {err}",
                self.name
            )));
        }
        if self.clear {
            return Ok(Mode::Clear);
        }
        match &self.set {
            Some(text) => {
                let text = self.prepared(text);
                protocol::check_line(&text, Field::Status)
                    .map_err(|e| RunError::Usage(format!("cannot --set that text: {e}")))?;
                self.check_not_blank(&text)
                    .map_err(|why| RunError::Usage(format!("cannot --set that text: {why}")))?;
                Ok(Mode::OneShot(text))
            }
            None if io::stdin().is_terminal() => Ok(Mode::Interactive),
            None => Ok(Mode::Piped),
        }
    }
}

/// What the client says of an empty status it does not post.
const EMPTY_REFUSED: &str =
    "the status is empty: --clear removes yours, and --allow-empty posts an empty one";

impl Options {
    /// A status as it is posted: cleaned with `--sanitize`.
    fn prepared(&self, text: &str) -> String {
        match self.sanitize {
            true => modes::sanitize(text, modes::room_for_status(&self.name)),
            false => text.to_owned(),
        }
    }

    /// Refuses an empty or blank status unless `--allow-empty`: legal on the
    /// wire (the original posts it), but far more often a slip than meant.
    fn check_not_blank(&self, text: &str) -> Result<(), &'static str> {
        match text.trim().is_empty() && !self.allow_empty {
            true => Err(EMPTY_REFUSED),
            false => Ok(()),
        }
    }
}

/// Runs the mode the options ask for, until done, interrupted or failed.
pub fn run(options: &Options, shutdown: &Shutdown) -> Result<(), RunError> {
    let mode = options.mode()?;
    let login = login::resolve(
        options.user.as_deref(),
        options.server_key.as_deref(),
        &options.name,
        &options.endpoint,
    )?;
    let client = Client::new(&options.endpoint, options.timeout, options.retries, login);
    let link = Link::new(client, "status_client", &options.endpoint, options.timeout);
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
                RunError::Client(ClientError::LoginWanted { endpoint }) => {
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

/// Writes `line` on stderr with every control character in it shown as an
/// escape: what the client says there often quotes a server (an `error:`
/// reply, a malformed line) or the environment (an endpoint, a user name),
/// and none of it may drive the terminal.
pub fn eprintln_visible(line: impl fmt::Display) {
    eprintln!("{}", visible(&line.to_string()));
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
struct Session<'a> {
    link: Link,
    options: &'a Options,
    shutdown: &'a Shutdown,
    out: StdoutLock<'static>,
    shown: u64,
    /// Whether stdin is a terminal: a person is there to type a password.
    at_terminal: bool,
    /// A password was typed since the courier and refresher were started:
    /// they log in as before, and are started again.
    relogged: bool,
    /// The status this client posted, kept fresh on a server with a TTL.
    own: Own,
    /// Started at the first status posted (interactive and piped).
    refresher: Option<Refresher>,
}

/// Passwords refused in a row at the prompt before the client gives up (as sudo).
const PASSWORD_TRIES: u32 = 3;

impl Session<'_> {
    /// Sends one request; an `error:` reply becomes [`RunError::Refused`].
    fn ask(&mut self, request: &str) -> Result<String, RunError> {
        let reply = self.link.request(request, self.shutdown)?;
        self.board_or_refusal(request, &reply)
    }

    /// Like [`Session::ask`], but on a terminal a server that wants a login
    /// we did not give, or refuses ours, is said and the password asked for
    /// (as `--user`, `STATUS_BOARD_USER` or the NAME), and the request sent
    /// again: what was typed is never dropped for want of a login. Three
    /// refusals in a row end it.
    fn ask_at_terminal(&mut self, request: &str) -> Result<String, RunError> {
        let mut refused = 0;
        loop {
            let err = match self.ask(request) {
                Err(RunError::Client(
                    err @ (ClientError::LoginWanted { .. } | ClientError::LoginRefused { .. }),
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
                ClientError::LoginRefused { .. } => {
                    refused += 1;
                    if refused >= PASSWORD_TRIES {
                        return Err(err.into());
                    }
                    eprintln_visible(format_args!("status_client: {err}"));
                }
                _ => eprintln_visible(format_args!(
                    "status_client: {} wants a login: log in as '{user}' (--user for another)",
                    self.options.endpoint
                )),
            }
            let password = login::ask_password(&user, &self.options.endpoint)?;
            self.link
                .client
                .set_login(Some(Login::Plain { user, password }));
            self.relogged = true;
        }
    }

    /// Whether a password typed now could help: a person at a terminal, and
    /// no login by key (which a password cannot replace).
    fn can_ask_password(&self) -> bool {
        self.at_terminal && !matches!(self.link.client.login(), Some(Login::Curve { .. }))
    }

    /// Starts keeping the status just posted fresh, if not yet: `say` is
    /// where the refresher speaks, `to_stop` how the user stops it.
    fn keep_fresh(&mut self, say: impl FnOnce() -> courier::Say, to_stop: &'static str) {
        if self.refresher.is_none() {
            self.refresher = Some(Refresher::start(
                self.link.client.sibling(),
                &self.options.name,
                self.own.clone(),
                say(),
                to_stop,
            ));
        }
    }

    /// Like [`Session::ask`], but a server that stops answering is said once
    /// and asked again until it is back (a watcher, a pipe: long-running
    /// feeds); `Interrupted` on Ctrl-C.
    fn ask_patiently(&mut self, request: &str) -> Result<String, RunError> {
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
    fn show(&mut self, board: &str, numbered: bool) -> Result<(), RunError> {
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
    fn greet(&mut self) -> Result<(), RunError> {
        if self.options.json {
            return Ok(());
        }
        writeln!(self.out, "{}", self.options.greeting).map_err(RunError::Stdout)
    }

    fn update(&self, text: &str) -> String {
        protocol::format_update(&self.options.name, text)
    }

    fn bad_reply(&self, source: ProtocolError) -> RunError {
        RunError::BadReply {
            endpoint: self.options.endpoint.clone(),
            source,
        }
    }
}
