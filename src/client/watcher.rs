//! The watch mode (`status_client _`): the board as it changes, on a
//! terminal or as the original prints it. Keeping up with the server is the
//! [`Follower`]'s job (`follow.rs`); this is how it is shown.

use std::io::{self, IsTerminal, StdoutLock, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::shutdown::Shutdown;
use crate::visible::visible;

use super::follow::{Follower, How, Step};
use super::link::Link;
use super::options::Options;
use super::render::{self, Style};
use super::say::eprintln_visible;
use super::session::RunError;

/// How often a terminal watcher redraws when nothing changes: ages move.
const REDRAW_EVERY: Duration = Duration::from_secs(1);

/// Shows the board until Ctrl-C or `--count`.
pub(super) fn watch(options: &Options, link: Link, shutdown: &Shutdown) -> Result<(), RunError> {
    let mut watcher = Watcher {
        follower: Follower::new(link, options.interval),
        options,
        out: io::stdout().lock(),
        shown: 0,
        view: View::choose(options.json),
        last_drawn: Instant::now(),
        resized: Arc::new(AtomicBool::new(false)),
        next_board: None,
        said_no_contact: false,
        shown_stale: None,
    };
    match watcher.view {
        View::Screen(_) => {
            // Without it the screen follows a resize at the next redraw, in a second.
            let _ = signal_hook::flag::register(
                signal_hook::consts::SIGWINCH,
                Arc::clone(&watcher.resized),
            );
            // Something on the screen at once, even when the server is away.
            watcher.draw(false)?;
        }
        View::Json => {}
        View::Scroll => {
            writeln!(watcher.out, "{}", options.greeting).map_err(RunError::Stdout)?;
        }
    }
    while !watcher.done() {
        let Some(step) = watcher.follower.next(shutdown)? else {
            break;
        };
        watcher.show(&step)?;
    }
    Ok(())
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
}

/// A watcher: its copy of the board, kept in step, and where it shows it.
struct Watcher<'a> {
    follower: Follower,
    options: &'a Options,
    out: StdoutLock<'static>,
    /// Boards shown, toward `--count`.
    shown: u64,
    view: View,
    last_drawn: Instant,
    /// Raised by SIGWINCH: the terminal changed size, redraw now.
    resized: Arc<AtomicBool>,
    /// With `--count`: when the next board is due (the first, at once).
    next_board: Option<Instant>,
    /// Whether "no contact yet" was said on stderr (scrolled and JSON boards).
    said_no_contact: bool,
    /// Since when the server said its board may be old, as last shown (on
    /// the screen, or said on stderr).
    shown_stale: Option<u64>,
}

impl Watcher<'_> {
    /// Whether `--count` boards have been shown.
    fn done(&self) -> bool {
        self.options.count.is_some_and(|count| self.shown >= count)
    }

    /// Shows what a step brought.
    ///
    /// Scrolled and JSON boards: one per change, and one per poll (as the
    /// original prints); with `--count`, one per interval, changed or not.
    /// The screen: redrawn once the changes that came together are applied,
    /// and every second for the ages; while the server is away it shows the
    /// board it has, marked stale, with its ages moving. Until the server is
    /// first heard, no board is shown as if it were the board.
    fn show(&mut self, step: &Step) -> Result<(), RunError> {
        let screen = matches!(self.view, View::Screen(_));
        let stale_changed = self.stale_changed(screen);
        if screen && matches!(step, Step::Changed(_)) && self.follower.has_pending() {
            return Ok(());
        }
        let new = matches!(step, Step::Changed(_) | Step::Board { .. });
        let counted = match self.options.count {
            Some(_) => self.paced_board_due(),
            None => new,
        };
        if counted {
            return self.draw(true);
        }
        if !screen {
            self.say_no_contact(step);
            return Ok(());
        }
        let resized = self.resized.swap(false, Ordering::SeqCst);
        let due = new
            || stale_changed
            || *step == Step::Away
            || self.last_drawn.elapsed() >= REDRAW_EVERY;
        match resized || due {
            true => self.draw(false),
            false => Ok(()),
        }
    }

    /// Whether the server's word on its board's staleness (a gateway that
    /// cannot reach its cluster) changed since last shown; scrolled and
    /// JSON boards say so on stderr, once each way (the screen shows it).
    fn stale_changed(&mut self, screen: bool) -> bool {
        let mirror = self.follower.mirror();
        let stale = mirror.stale_since_ms;
        if stale == self.shown_stale {
            return false;
        }
        self.shown_stale = stale;
        if !screen {
            let link = self.follower.link();
            match render::stale_note(mirror) {
                Some(note) => eprintln_visible(format_args!(
                    "{}: {}: {note}",
                    link.program(),
                    link.endpoint()
                )),
                None => eprintln_visible(format_args!(
                    "{}: the board is current again: {} reaches its cluster",
                    link.program(),
                    link.endpoint()
                )),
            }
        }
        true
    }

    /// With `--count`: whether a board is due, one per interval from the
    /// first, whether or not it changed (a live feed brings no step for an
    /// unchanged board). Only a board in step with the server counts: none
    /// before it first answers, none while it is away.
    fn paced_board_due(&mut self) -> bool {
        let in_step = self.follower.has_answered()
            && !self.follower.is_out_of_touch()
            && !self.follower.has_pending();
        let now = Instant::now();
        if !in_step || self.next_board.is_some_and(|at| now < at) {
            return false;
        }
        let interval = self.options.interval;
        // Every interval from the first board, unless a wait threw it off.
        self.next_board = Some(match self.next_board {
            Some(at) if now < at + interval => at + interval,
            _ => now + interval,
        });
        true
    }

    /// Scrolled and JSON boards print only boards the server sent: before
    /// the first, stderr says once why there is none.
    fn say_no_contact(&mut self, step: &Step) {
        if *step != Step::Away || self.said_no_contact || self.follower.mirror().has_board() {
            return;
        }
        self.said_no_contact = true;
        let link = self.follower.link();
        eprintln_visible(format_args!(
            "{}: no contact yet with {}: no board is shown until it answers",
            link.program(),
            link.client.endpoints()
        ));
    }

    /// Shows the board; `new_board` counts it toward `--count` (a terminal is
    /// also redrawn for the ages, which does not count).
    fn draw(&mut self, new_board: bool) -> Result<(), RunError> {
        let title = matches!(self.view, View::Screen(_)).then(|| self.title());
        let out = &mut self.out;
        let mirror = self.follower.mirror();
        let written = match self.view {
            View::Scroll if new_board => render::write_block(out, self.shown, &mirror.plain()),
            View::Json if new_board => render::write_mirror_json(out, mirror),
            View::Screen(style) => {
                self.last_drawn = Instant::now();
                let title = title.unwrap_or_default();
                let size = render::ScreenSize::of_stdout();
                render::write_screen(out, mirror, &title, style, size)
            }
            View::Scroll | View::Json => return Ok(()),
        };
        written
            .and_then(|()| out.flush())
            .map_err(RunError::Stdout)?;
        if new_board {
            self.shown += 1;
        }
        Ok(())
    }

    /// The terminal screen's first line: where, how, how many.
    fn title(&self) -> String {
        let options = self.options;
        let every = format!("every {} s", options.interval.as_secs_f64());
        let link = self.follower.link();
        let mirror = self.follower.mirror();
        let painted = |text: String| match self.view {
            View::Screen(style) => style.paint("1;31", &text),
            _ => text,
        };
        let how = match (self.follower.how(), self.follower.is_out_of_touch()) {
            // Never heard: there is no board to call stale.
            (_, true) if !mirror.has_board() => {
                let trying = link.silent_for().as_secs();
                painted(format!("no contact yet (trying for {trying} s)"))
            }
            (_, true) => {
                let away = link.silent_for().as_secs();
                painted(format!("stale: no contact for {away} s"))
            }
            _ if !mirror.has_board() => "connecting".to_owned(),
            (How::Live, false) => "live".to_owned(),
            (How::Since, false) => format!("polling {every}"),
            (How::Original, false) => format!("polling {every} (original server: no ages)"),
        };
        let names = mirror.entries().count();
        format!(
            "status board at {} · {how} · {names} {}",
            visible(link.endpoint()),
            if names == 1 { "name" } else { "names" }
        )
    }
}
