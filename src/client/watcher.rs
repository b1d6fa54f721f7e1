//! The watch mode (`status_client _`): the board as it changes.
//!
//! It keeps up in the best way the server offers: changes pushed by its
//! publisher (the Clone pattern: subscribe, then snapshot, then apply each
//! next change), else `_:@since` polls that cost a few bytes while nothing
//! changes, else (the original server) a whole board per poll.

use std::collections::HashSet;
use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::protocol::{self, ExtendedReply, POLL_REQUEST, SNAPSHOT_REQUEST};
use crate::shutdown::Shutdown;

use super::mirror::{self, Applied, Mirror};
use super::render::{self, Style};
use super::request::Client;
use super::{ClientError, RunError, Session};

/// How often a terminal watcher redraws when nothing changes: ages move.
const REDRAW_EVERY: Duration = Duration::from_secs(1);

/// A publisher silent this long is presumed gone; it sends a heartbeat every second.
const SILENCE: Duration = Duration::from_secs(3);

/// Most published messages taken off the socket before they are applied.
const DRAIN_AT_ONCE: usize = 1024;

/// Most changes a watcher queues before it misses some (then catches up from a snapshot).
const SUBSCRIBE_HWM: i32 = 100_000;

/// Shows the board until Ctrl-C or `--count`.
pub(super) fn watch(session: &mut Session<'_>) -> Result<(), RunError> {
    let view = View::choose(session.options.json);
    if !matches!(view, View::Screen(_)) {
        session.greet()?;
    }
    let mut watcher = Watcher {
        session,
        mirror: Mirror::empty(),
        feed: Feed::Original,
        view,
        silent: HashSet::new(),
        last_drawn: Instant::now(),
        resized: Arc::new(AtomicBool::new(false)),
    };
    if let View::Screen(_) = watcher.view {
        // Without it the screen follows a resize at the next redraw, in a second.
        let _ = signal_hook::flag::register(
            signal_hook::consts::SIGWINCH,
            Arc::clone(&watcher.resized),
        );
    }
    if let View::Screen(_) = watcher.view {
        // Something on the screen at once, even when the server is away.
        watcher.draw(false)?;
    }
    let Some(reply) = watcher.fetch(SNAPSHOT_REQUEST)? else {
        return Ok(());
    };
    if let Flow::Stop = watcher.take(reply)? {
        return Ok(());
    }
    watcher.draw(true)?;
    while !watcher.done() {
        let flow = match watcher.feed {
            Feed::Live(_) => watcher.follow()?,
            Feed::Since | Feed::Original => watcher.poll()?,
        };
        if let Flow::Stop = flow {
            break;
        }
    }
    Ok(())
}

/// Whether the watcher goes on after a step: it stops on Ctrl-C or `--count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

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
    fn open(client: &Client, endpoint: &str) -> Result<Subscription, zmq::Error> {
        let socket = client.context().socket(zmq::SUB)?;
        // The publisher of a server with --auth wants the same login.
        client.log_in(&socket)?;
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

    /// Waits up to [`Shutdown::CHECK_EVERY`] for published messages; takes
    /// what has come, up to [`DRAIN_AT_ONCE`].
    fn receive(&mut self) -> Result<Vec<Vec<u8>>, RunError> {
        let readable = match self
            .socket
            .poll(zmq::POLLIN, Shutdown::CHECK_EVERY_MS.into())
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
        let mut frames = Vec::new();
        if readable {
            self.heard();
            while frames.len() < DRAIN_AT_ONCE {
                match self.socket.recv_bytes(zmq::DONTWAIT) {
                    Ok(frame) => frames.push(frame),
                    Err(_) => break,
                }
            }
        }
        Ok(frames)
    }
}

/// A watcher: the session it prints to, its copy of the board, and how it
/// keeps that copy up to date.
struct Watcher<'s, 'a> {
    session: &'s mut Session<'a>,
    mirror: Mirror,
    feed: Feed,
    view: View,
    /// Publishers that never spoke to us: not tried again.
    silent: HashSet<String>,
    last_drawn: Instant,
    /// Raised by SIGWINCH: the terminal changed size, redraw now.
    resized: Arc<AtomicBool>,
}

impl Watcher<'_, '_> {
    /// Whether `--count` boards have been shown.
    fn done(&self) -> bool {
        let options = self.session.options;
        options
            .count
            .is_some_and(|count| self.session.shown >= count)
    }

    /// Sends a watcher's request until some reply comes; `None` on Ctrl-C.
    ///
    /// A server that stops answering is reported once, then asked again
    /// until it is back.
    fn fetch(&mut self, request: &str) -> Result<Option<ExtendedReply>, RunError> {
        loop {
            match self.session.request_round(request) {
                Ok(Some(reply)) => {
                    return protocol::parse_extended_reply(&reply)
                        .map(Some)
                        .map_err(|source| self.session.bad_reply(source));
                }
                // Away: a terminal shows the board it has, marked stale, with
                // its ages still moving; then the next round.
                Ok(None) => {
                    if let View::Screen(_) = self.view {
                        self.draw(false)?;
                    }
                }
                // Ctrl-C is how a watcher is stopped.
                Err(RunError::Client(ClientError::Interrupted)) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes a reply in and picks how to follow the board from there.
    fn take(&mut self, reply: ExtendedReply) -> Result<Flow, RunError> {
        match reply {
            ExtendedReply::Snapshot(snapshot) => {
                self.mirror.reset(snapshot);
                self.choose_feed()
            }
            ExtendedReply::Unchanged { .. } => Ok(Flow::Continue),
            ExtendedReply::Board(entries) => {
                self.mirror.reset_original(entries);
                self.feed = Feed::Original;
                Ok(Flow::Continue)
            }
            // Not our server, and not the original either: fall back to the
            // one request every status server answers.
            ExtendedReply::Error(message) => {
                eprintln!(
                    "status_client: the server refused a snapshot ({message}); polling instead"
                );
                self.feed = Feed::Original;
                Ok(Flow::Continue)
            }
        }
    }

    /// Subscribes to the publisher the snapshot names, if any (then takes a
    /// fresh snapshot, the Clone pattern's order); else polls with `_:@since`.
    fn choose_feed(&mut self) -> Result<Flow, RunError> {
        let server = &self.session.options.endpoint;
        let endpoint = mirror::publisher_endpoint(server, &self.mirror.publish)
            .filter(|e| !self.silent.contains(e));
        let Some(endpoint) = endpoint else {
            self.feed = Feed::Since;
            return Ok(Flow::Continue);
        };
        if matches!(&self.feed, Feed::Live(sub) if sub.endpoint == endpoint) {
            return Ok(Flow::Continue);
        }
        match Subscription::open(&self.session.client, &endpoint) {
            Ok(sub) => self.feed = Feed::Live(sub),
            Err(err) => {
                eprintln!("status_client: cannot subscribe to {endpoint}: {err}; polling instead");
                self.silent.insert(endpoint);
                self.feed = Feed::Since;
                return Ok(Flow::Continue);
            }
        }
        // Subscribed first: every change after the snapshot is on its way.
        match self.fetch(SNAPSHOT_REQUEST)? {
            None => Ok(Flow::Stop),
            Some(ExtendedReply::Snapshot(snapshot)) => {
                self.mirror.reset(snapshot);
                Ok(Flow::Continue)
            }
            Some(other) => self.take(other),
        }
    }

    /// Waits for published changes and applies them; redraws a terminal
    /// every second for the ages.
    fn follow(&mut self) -> Result<Flow, RunError> {
        let Feed::Live(sub) = &mut self.feed else {
            return Ok(Flow::Continue);
        };
        // Taken off the socket first, then applied: drawing needs the watcher.
        let frames = sub.receive()?;
        if self.session.shutdown.is_triggered() {
            return Ok(Flow::Stop);
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
            match self.mirror.apply(&notice) {
                Applied::Changed if self.view.per_change() => {
                    self.draw(true)?;
                    if self.done() {
                        return Ok(Flow::Stop);
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
        if !gap && self.publisher_silent() {
            let Feed::Live(sub) = &mut self.feed else {
                return Ok(Flow::Continue);
            };
            if !sub.ever_heard {
                // Nothing ever came: a firewall, or an address only the server's
                // host can reach. Polling works wherever the server answers.
                eprintln!(
                    "status_client: no changes from the publisher at {} in {} s; polling every {} s instead",
                    sub.endpoint,
                    SILENCE.as_secs(),
                    self.session.options.interval.as_secs_f64()
                );
                self.silent.insert(sub.endpoint.clone());
                self.feed = Feed::Since;
                return Ok(Flow::Continue);
            }
            // It spoke before and stopped: the server may be gone or restarted.
            sub.last_heard = Instant::now();
            gap = true;
        }
        if gap {
            return self.resync();
        }
        let resized = self.resized.swap(false, Ordering::SeqCst);
        let due = dirty || resized || self.last_drawn.elapsed() >= REDRAW_EVERY;
        if matches!(self.view, View::Screen(_)) && due {
            self.draw(dirty)?;
        }
        Ok(Flow::Continue)
    }

    /// Whether the publisher has said nothing, not even a heartbeat, for [`SILENCE`].
    fn publisher_silent(&self) -> bool {
        matches!(&self.feed, Feed::Live(sub) if sub.last_heard.elapsed() >= SILENCE)
    }

    /// Something was missed: takes a fresh snapshot, and shows it if it moved.
    fn resync(&mut self) -> Result<Flow, RunError> {
        let Some(reply) = self.fetch(SNAPSHOT_REQUEST)? else {
            return Ok(Flow::Stop);
        };
        let before = (self.mirror.seq, self.mirror.epoch.clone());
        if let Flow::Stop = self.take(reply)? {
            return Ok(Flow::Stop);
        }
        if (self.mirror.seq, &self.mirror.epoch) != (before.0, &before.1) {
            self.draw(true)?;
        }
        Ok(Flow::Continue)
    }

    /// Waits one interval (redrawing a terminal for the ages), then polls.
    fn poll(&mut self) -> Result<Flow, RunError> {
        let deadline = Instant::now() + self.session.options.interval;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            // A terminal looks often: for a resize, and every second for the ages.
            let slice = match self.view {
                View::Screen(_) => left.min(Shutdown::CHECK_EVERY),
                _ => left,
            };
            if !self.session.shutdown.sleep(slice) {
                return Ok(Flow::Stop);
            }
            let resized = self.resized.swap(false, Ordering::SeqCst);
            if matches!(self.view, View::Screen(_))
                && (resized || self.last_drawn.elapsed() >= REDRAW_EVERY)
            {
                self.draw(false)?;
            }
        }
        let request = match self.feed {
            Feed::Since => protocol::format_since(&self.mirror.epoch, self.mirror.seq),
            _ => POLL_REQUEST.to_owned(),
        };
        let Some(reply) = self.fetch(&request)? else {
            return Ok(Flow::Stop);
        };
        if let Flow::Stop = self.take(reply)? {
            return Ok(Flow::Stop);
        }
        // A board every interval, as the original prints it, changed or not.
        self.draw(true)?;
        Ok(Flow::Continue)
    }

    /// Shows the board; `new_board` counts it toward `--count` (a terminal is
    /// also redrawn for the ages, which does not count).
    fn draw(&mut self, new_board: bool) -> Result<(), RunError> {
        let title = matches!(self.view, View::Screen(_)).then(|| self.title());
        let session = &mut *self.session;
        let written = match self.view {
            View::Scroll if new_board => {
                render::write_block(&mut session.out, session.shown, &self.mirror.plain())
            }
            View::Json if new_board => render::write_mirror_json(&mut session.out, &self.mirror),
            View::Screen(style) => {
                self.last_drawn = Instant::now();
                let title = title.unwrap_or_default();
                let size = render::ScreenSize::of_stdout();
                render::write_screen(&mut session.out, &mut self.mirror, &title, style, size)
            }
            View::Scroll | View::Json => return Ok(()),
        };
        written
            .and_then(|()| session.out.flush())
            .map_err(RunError::Stdout)?;
        if new_board {
            session.shown += 1;
        }
        Ok(())
    }

    /// The terminal screen's first line: where, how, how many.
    fn title(&self) -> String {
        let options = self.session.options;
        let every = format!("every {} s", options.interval.as_secs_f64());
        let how = match (&self.feed, self.session.outage) {
            (_, Some(_)) => {
                let away = self.session.last_contact.elapsed().as_secs();
                let stale = format!("stale: no contact for {away} s");
                match self.view {
                    View::Screen(style) => style.paint("1;31", &stale),
                    _ => stale,
                }
            }
            _ if !self.mirror.has_board() => "connecting".to_owned(),
            (Feed::Live(_), None) => "live".to_owned(),
            (Feed::Since, None) => format!("polling {every}"),
            (Feed::Original, None) => format!("polling {every} (original server: no ages)"),
        };
        let names = self.mirror.entries().count();
        format!(
            "status board at {} · {how} · {names} {}",
            options.endpoint,
            if names == 1 { "name" } else { "names" }
        )
    }
}
