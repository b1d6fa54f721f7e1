//! What `status_client` does: interactive, piped, one-shot and watch modes.
//!
//! Output is the Python original's (`----------------- N` and the board) or,
//! with `--json`, one JSON document per board. Each mode ends with a [`RunError`]
//! whose [`RunError::exit_code`] is the process exit code.

use std::collections::HashSet;
use std::io::{self, BufRead, IsTerminal, StdoutLock, Write};
use std::time::{Duration, Instant};

use rustyline::error::ReadlineError;

use crate::client::{Client, ClientError};
use crate::protocol::{
    self, ERROR_PREFIX, ExtendedReply, Field, Limits, POLL_NAME, POLL_REQUEST, ProtocolError,
    SNAPSHOT_REQUEST,
};
use crate::render::{self, Style};
use crate::shutdown::Shutdown;
use crate::watch::{self, Applied, Mirror};

/// Exit code when the server answered `error: …` or with something that is not a board.
pub const EXIT_REFUSED: u8 = 1;
/// Exit code for bad arguments, a name the protocol cannot carry, or unreadable input.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the server did not answer any try.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code when Ctrl-C or SIGTERM stopped an update before it was acknowledged.
pub const EXIT_INTERRUPTED: u8 = 130;

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
}

/// The four ways the client runs, chosen from the name, `--set` and stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
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
}

impl RunError {
    /// The process exit code for this error (documented in `--help`).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Usage(_) | RunError::Stdin(_) | RunError::Terminal(_) => EXIT_USAGE,
            RunError::Client(ClientError::Connect { .. }) => EXIT_USAGE,
            RunError::Client(ClientError::NoReply { .. }) => EXIT_UNREACHABLE,
            RunError::Client(ClientError::Interrupted) => EXIT_INTERRUPTED,
            RunError::Refused { .. }
            | RunError::Unsupported(_)
            | RunError::BadReply { .. }
            | RunError::Client(ClientError::Socket { .. })
            | RunError::Stdout(_) => EXIT_REFUSED,
        }
    }
}

impl Options {
    /// Picks the mode, refusing combinations that mean nothing.
    pub fn mode(&self) -> Result<Mode, RunError> {
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
        let unlimited = Limits {
            max_request: usize::MAX,
            max_name: usize::MAX,
        };
        if let Err(err) = protocol::check_name(&self.name, &unlimited) {
            let why = match err {
                ProtocolError::NoColon => {
                    "it contains ':', which ends a name on the wire".to_owned()
                }
                other => other.to_string(),
            };
            return Err(RunError::Usage(format!(
                "cannot use the name {:?}: {why}",
                self.name
            )));
        }
        if self.clear {
            return Ok(Mode::Clear);
        }
        match &self.set {
            Some(text) => {
                protocol::check_line(text, Field::Status)
                    .map_err(|e| RunError::Usage(format!("cannot --set that text: {e}")))?;
                Ok(Mode::OneShot(text.clone()))
            }
            None if io::stdin().is_terminal() => Ok(Mode::Interactive),
            None => Ok(Mode::Piped),
        }
    }
}

/// Runs the mode the options ask for, until done, interrupted or failed.
pub fn run(options: &Options, shutdown: &Shutdown) -> Result<(), RunError> {
    let mode = options.mode()?;
    let mut session = Session {
        client: Client::new(&options.endpoint, options.timeout, options.retries),
        options,
        shutdown,
        out: io::stdout().lock(),
        shown: 0,
    };
    let result = match mode {
        Mode::OneShot(text) => session.one_shot(&text),
        Mode::Clear => session.clear(),
        Mode::Piped => session.piped(),
        Mode::Interactive => session.interactive(),
        Mode::Watch => session.watch(),
    };
    match result {
        // `status_client _ | head`: the reader has gone, which is not our failure.
        Err(RunError::Stdout(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// One run of the client: its connection, output, and the boards shown so far.
struct Session<'a> {
    client: Client,
    options: &'a Options,
    shutdown: &'a Shutdown,
    out: StdoutLock<'static>,
    shown: u64,
}

impl Session<'_> {
    /// Sends one request; an `error:` reply becomes [`RunError::Refused`].
    fn ask(&mut self, request: &str) -> Result<String, RunError> {
        let reply = self.client.request(request.as_bytes(), self.shutdown)?;
        let text = String::from_utf8(reply).map_err(|e| RunError::BadReply {
            endpoint: self.options.endpoint.clone(),
            source: ProtocolError::NotUtf8 {
                offset: e.utf8_error().valid_up_to(),
            },
        })?;
        match text.strip_prefix(ERROR_PREFIX) {
            Some(message) => Err(RunError::Refused {
                request: request.to_owned(),
                message: message.to_owned(),
            }),
            None => Ok(text),
        }
    }

    /// Prints a board: as JSON, as the original's numbered block, or bare.
    fn show(&mut self, board: &str, numbered: bool) -> Result<(), RunError> {
        let written = if self.options.json {
            let entries = protocol::parse_board(board).map_err(|source| RunError::BadReply {
                endpoint: self.options.endpoint.clone(),
                source,
            })?;
            render::write_json(&mut self.out, &entries)
        } else if numbered {
            render::write_block(&mut self.out, self.shown, board)
        } else {
            self.out.write_all(board.as_bytes())
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

    fn one_shot(&mut self, text: &str) -> Result<(), RunError> {
        let board = self.ask(&self.update(text))?;
        if self.options.quiet {
            return Ok(());
        }
        self.show(&board, false)
    }

    fn piped(&mut self) -> Result<(), RunError> {
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

    fn interactive(&mut self) -> Result<(), RunError> {
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

    fn clear(&mut self) -> Result<(), RunError> {
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

    fn bad_reply(&self, source: ProtocolError) -> RunError {
        RunError::BadReply {
            endpoint: self.options.endpoint.clone(),
            source,
        }
    }

    /// Shows the board until Ctrl-C or `--count`: pushed changes when the
    /// server publishes them, else a poll every interval that costs a few
    /// bytes while nothing changes, else (the original server) its polls.
    fn watch(&mut self) -> Result<(), RunError> {
        let view = View::choose(self.options.json);
        if !matches!(view, View::Screen(_)) {
            self.greet()?;
        }
        let mut watching = Watching {
            mirror: Mirror::empty(),
            feed: Feed::Original,
            view,
            silent: HashSet::new(),
            last_drawn: Instant::now(),
        };
        let Some(reply) = self.fetch(SNAPSHOT_REQUEST)? else {
            return Ok(());
        };
        if !self.take(&mut watching, reply)? {
            return Ok(());
        }
        self.draw(&mut watching, true)?;
        while !self.done() {
            let going = match watching.feed {
                Feed::Live(_) => self.follow(&mut watching)?,
                Feed::Since | Feed::Original => self.poll(&mut watching)?,
            };
            if !going {
                break;
            }
        }
        Ok(())
    }

    /// Whether `--count` boards have been shown.
    fn done(&self) -> bool {
        self.options.count.is_some_and(|count| self.shown >= count)
    }

    /// Sends a watcher's request until some reply comes; `None` on Ctrl-C.
    ///
    /// A server that stops answering is reported once, then asked again
    /// until it is back.
    fn fetch(&mut self, request: &str) -> Result<Option<ExtendedReply>, RunError> {
        let mut outage = false;
        loop {
            match self.client.request(request.as_bytes(), self.shutdown) {
                Ok(reply) => {
                    if outage {
                        eprintln!("status_client: {} answers again", self.options.endpoint);
                    }
                    return protocol::parse_extended_reply(&reply)
                        .map(Some)
                        .map_err(|source| self.bad_reply(source));
                }
                Err(err @ ClientError::NoReply { .. }) => {
                    if !outage {
                        eprintln!("status_client: {err} (still trying; Ctrl-C to stop)");
                        outage = true;
                    }
                    // The tries already waited; ask again at once.
                }
                // Ctrl-C is how a watcher is stopped.
                Err(ClientError::Interrupted) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Takes a reply in and picks how to follow the board from there;
    /// `Ok(false)` on Ctrl-C.
    fn take(&mut self, w: &mut Watching, reply: ExtendedReply) -> Result<bool, RunError> {
        match reply {
            ExtendedReply::Snapshot(snapshot) => {
                w.mirror.reset(snapshot);
                self.choose_feed(w)
            }
            ExtendedReply::Unchanged { .. } => Ok(true),
            ExtendedReply::Board(entries) => {
                w.mirror.reset_original(entries);
                w.feed = Feed::Original;
                Ok(true)
            }
            // Not our server, and not the original either: fall back to the
            // one request every status server answers.
            ExtendedReply::Error(message) => {
                eprintln!(
                    "status_client: the server refused a snapshot ({message}); polling instead"
                );
                w.feed = Feed::Original;
                Ok(true)
            }
        }
    }

    /// Subscribes to the publisher the snapshot names, if any (then takes a
    /// fresh snapshot, the Clone pattern's order); else polls with `_:@since`.
    fn choose_feed(&mut self, w: &mut Watching) -> Result<bool, RunError> {
        let endpoint = watch::publisher_endpoint(&self.options.endpoint, &w.mirror.publish)
            .filter(|e| !w.silent.contains(e));
        let Some(endpoint) = endpoint else {
            w.feed = Feed::Since;
            return Ok(true);
        };
        if matches!(&w.feed, Feed::Live(sub) if sub.endpoint == endpoint) {
            return Ok(true);
        }
        match Subscription::open(self.client.context(), &endpoint) {
            Ok(sub) => w.feed = Feed::Live(sub),
            Err(err) => {
                eprintln!("status_client: cannot subscribe to {endpoint}: {err}; polling instead");
                w.silent.insert(endpoint);
                w.feed = Feed::Since;
                return Ok(true);
            }
        }
        // Subscribed first: every change after the snapshot is on its way.
        match self.fetch(SNAPSHOT_REQUEST)? {
            None => Ok(false),
            Some(ExtendedReply::Snapshot(snapshot)) => {
                w.mirror.reset(snapshot);
                Ok(true)
            }
            Some(other) => self.take(w, other),
        }
    }

    /// Waits for published changes and applies them; redraws a terminal
    /// every second for the ages. `Ok(false)` on Ctrl-C or `--count`.
    fn follow(&mut self, w: &mut Watching) -> Result<bool, RunError> {
        let Feed::Live(sub) = &mut w.feed else {
            return Ok(true);
        };
        let readable = match sub
            .socket
            .poll(zmq::POLLIN, SHUTDOWN_CHECK.as_millis() as i64)
        {
            Ok(n) => n > 0,
            Err(zmq::Error::EINTR) => false,
            Err(source) => {
                return Err(ClientError::Socket {
                    action: "wait for changes",
                    source,
                }
                .into());
            }
        };
        if self.shutdown.is_triggered() {
            return Ok(false);
        }
        // Taken off the socket first, then applied: drawing needs the watcher.
        let mut frames = Vec::new();
        if readable {
            sub.heard();
            while frames.len() < DRAIN_AT_ONCE {
                match sub.socket.recv_bytes(zmq::DONTWAIT) {
                    Ok(frame) => frames.push(frame),
                    Err(_) => break,
                }
            }
        }
        let mut dirty = false;
        let mut gap = false;
        for frame in &frames {
            let notice = match protocol::parse_notice(frame) {
                Ok(notice) => notice,
                Err(err) => {
                    eprintln!("status_client: ignored a published change: {err}");
                    continue;
                }
            };
            match w.mirror.apply(&notice) {
                Applied::Changed if w.view.per_change() => {
                    self.draw(w, true)?;
                    if self.done() {
                        return Ok(false);
                    }
                }
                Applied::Changed => dirty = true,
                Applied::Ignored => {}
                Applied::Gap => {
                    gap = true;
                    break;
                }
            }
        }
        let Feed::Live(sub) = &mut w.feed else {
            return Ok(true);
        };
        if !gap && sub.last_heard.elapsed() >= SILENCE {
            if !sub.ever_heard {
                // Nothing ever came: a firewall, or an address only the server's
                // host can reach. Polling works wherever the server answers.
                eprintln!(
                    "status_client: no changes from the publisher at {} in {} s; polling every {} s instead",
                    sub.endpoint,
                    SILENCE.as_secs(),
                    self.options.interval.as_secs_f64()
                );
                w.silent.insert(sub.endpoint.clone());
                w.feed = Feed::Since;
                return Ok(true);
            }
            // It spoke before and stopped: the server may be gone or restarted.
            sub.last_heard = Instant::now();
            gap = true;
        }
        if gap {
            let Some(reply) = self.fetch(SNAPSHOT_REQUEST)? else {
                return Ok(false);
            };
            let before = w.mirror.seq;
            let epoch = w.mirror.epoch.clone();
            if !self.take(w, reply)? {
                return Ok(false);
            }
            if w.mirror.seq != before || w.mirror.epoch != epoch {
                return self.draw(w, true).map(|()| true);
            }
        }
        let due = dirty || w.last_drawn.elapsed() >= REDRAW_EVERY;
        if matches!(w.view, View::Screen(_)) && due {
            self.draw(w, dirty)?;
        }
        Ok(true)
    }

    /// Waits one interval (redrawing a terminal for the ages), then polls.
    fn poll(&mut self, w: &mut Watching) -> Result<bool, RunError> {
        let deadline = Instant::now() + self.options.interval;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let slice = match w.view {
                View::Screen(_) => left.min(REDRAW_EVERY),
                _ => left,
            };
            if !self.shutdown.sleep(slice) {
                return Ok(false);
            }
            if let View::Screen(_) = w.view {
                self.draw(w, false)?;
            }
        }
        let request = match w.feed {
            Feed::Since => protocol::format_since(&w.mirror.epoch, w.mirror.seq),
            _ => POLL_REQUEST.to_owned(),
        };
        let Some(reply) = self.fetch(&request)? else {
            return Ok(false);
        };
        if !self.take(w, reply)? {
            return Ok(false);
        }
        // A board every interval, as the original prints it, changed or not.
        self.draw(w, true)?;
        Ok(true)
    }

    /// Shows the board; `new_board` counts it toward `--count` (a terminal is
    /// also redrawn for the ages, which does not count).
    fn draw(&mut self, w: &mut Watching, new_board: bool) -> Result<(), RunError> {
        let written = match w.view {
            View::Scroll if new_board => {
                render::write_block(&mut self.out, self.shown, &w.mirror.plain())
            }
            View::Json if new_board => render::write_mirror_json(&mut self.out, &w.mirror),
            View::Screen(style) => {
                let title = self.title(w);
                w.last_drawn = Instant::now();
                render::write_screen(&mut self.out, &mut w.mirror, &title, style)
            }
            View::Scroll | View::Json => return Ok(()),
        };
        written
            .and_then(|()| self.out.flush())
            .map_err(RunError::Stdout)?;
        if new_board {
            self.shown += 1;
        }
        Ok(())
    }

    /// The terminal screen's first line: where, how, how many.
    fn title(&self, w: &Watching) -> String {
        let every = format!("every {} s", self.options.interval.as_secs_f64());
        let how = match &w.feed {
            Feed::Live(_) => "live".to_owned(),
            Feed::Since => format!("polling {every}"),
            Feed::Original => format!("polling {every} (original server: no ages)"),
        };
        let names = w.mirror.entries().count();
        format!(
            "status board at {} · {how} · {names} {}",
            self.options.endpoint,
            if names == 1 { "name" } else { "names" }
        )
    }
}

/// How often a terminal watcher redraws when nothing changes: ages move.
const REDRAW_EVERY: Duration = Duration::from_secs(1);

/// A publisher silent this long is presumed gone; it sends a heartbeat every second.
const SILENCE: Duration = Duration::from_secs(3);

/// How often a live watcher looks at the Ctrl-C flag.
const SHUTDOWN_CHECK: Duration = Duration::from_millis(100);

/// Most published messages taken off the socket before they are applied.
const DRAIN_AT_ONCE: usize = 1024;

/// Most changes a watcher queues before it misses some (then catches up from a snapshot).
const SUBSCRIBE_HWM: i32 = 100_000;

/// How a watcher shows boards.
#[derive(Debug, Clone, Copy)]
enum View {
    /// The original's numbered blocks: stdout is not a terminal.
    Scroll,
    /// One JSON document per board (`--json`).
    Json,
    /// Redrawn in place with ages and marks: stdout is a terminal.
    Screen(Style),
}

impl View {
    fn choose(json: bool) -> View {
        let dumb = std::env::var("TERM").is_ok_and(|term| term == "dumb");
        match json {
            true => View::Json,
            // A dumb terminal cannot move the cursor: scroll as the original does.
            false if io::stdout().is_terminal() && !dumb => View::Screen(Style::from_env()),
            false => View::Scroll,
        }
    }

    /// Whether every published change is a board of its own.
    fn per_change(self) -> bool {
        !matches!(self, View::Screen(_))
    }
}

/// How a watcher keeps up with the board.
enum Feed {
    /// Changes pushed by the server's publisher.
    Live(Subscription),
    /// `_:@since EPOCH SEQ` every interval: a few bytes while nothing changes.
    Since,
    /// The original server: `_:` every interval, the whole board each time.
    Original,
}

/// A SUB socket on the server's publisher.
struct Subscription {
    socket: zmq::Socket,
    endpoint: String,
    last_heard: Instant,
    ever_heard: bool,
}

impl Subscription {
    fn open(context: &zmq::Context, endpoint: &str) -> Result<Subscription, zmq::Error> {
        let socket = context.socket(zmq::SUB)?;
        // LINGER 0: a subscriber has nothing to deliver at exit.
        socket.set_linger(0)?;
        socket.set_rcvhwm(SUBSCRIBE_HWM)?;
        socket.set_ipv6(true)?;
        socket.set_subscribe(b"")?;
        socket.connect(endpoint)?;
        Ok(Subscription {
            socket,
            endpoint: endpoint.to_owned(),
            last_heard: Instant::now(),
            ever_heard: false,
        })
    }

    fn heard(&mut self) {
        self.last_heard = Instant::now();
        self.ever_heard = true;
    }
}

/// A watcher's state between boards.
struct Watching {
    mirror: Mirror,
    feed: Feed,
    view: View,
    /// Publishers that never spoke to us: not tried again.
    silent: HashSet<String>,
    last_drawn: Instant,
}
