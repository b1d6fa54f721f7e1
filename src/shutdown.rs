//! A shutdown flag that Ctrl-C, SIGTERM or a test can raise, and the reload
//! that SIGHUP asks a server for.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// Stored in `idle_exit` while the program has something to finish.
const BUSY: i32 = -1;

#[derive(Debug)]
struct State {
    stop: AtomicBool,
    /// The program's exit code for "interrupted" (the binaries own their
    /// codes): after a second Ctrl-C, and for [`Leave::Interrupted`].
    interrupted_exit: i32,
    /// While waiting on a person (a prompt, stdin), the code to exit with at once.
    idle_exit: AtomicI32,
    /// SIGHUP came to a program that reloads on it, and nobody has reloaded since.
    reload: AtomicBool,
}

impl State {
    /// What SIGINT and SIGTERM do: stop, or leave at once if there is
    /// nothing to finish or the user asked twice. Runs on a signal thread.
    fn on_stop_signal(&self) {
        let idle_exit = self.idle_exit.load(Ordering::SeqCst);
        if idle_exit != BUSY {
            // Blocked on a person's input with nothing to finish: leave now.
            std::process::exit(idle_exit);
        }
        if self.stop.swap(true, Ordering::SeqCst) {
            // The user asked twice: whatever we were finishing is not worth the wait.
            std::process::exit(self.interrupted_exit);
        }
    }
}

/// What SIGHUP means to a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hangup {
    /// The terminal is gone: stop, as on SIGTERM (the client).
    Stops,
    /// Read the configuration again (the server: its users file).
    Reloads,
}

/// How a program leaves when a signal comes while it waits on a person
/// (see [`Shutdown::exit_if_signalled_during`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leave {
    /// As a success (exit 0): Ctrl-C is how a person leaves a prompt.
    Done,
    /// As interrupted: with the code given to [`Shutdown::on_signals`].
    Interrupted,
}

/// Why the signal handlers could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// Ctrl-C (SIGINT).
    #[error(transparent)]
    CtrlC(#[from] ctrlc::Error),
    /// SIGTERM and SIGHUP.
    #[error("cannot handle SIGTERM and SIGHUP")]
    Other(#[source] std::io::Error),
}

/// A cloneable flag that tells loops to finish what they hold and return.
#[derive(Debug, Clone)]
pub struct Shutdown(Arc<State>);

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::with_interrupted_exit(1)
    }
}

impl Shutdown {
    /// How often every wait looks at the flag, in ms: well under the one
    /// second a stop may take. The one setting for the server's receive
    /// timeout, the client's reply wait and a watcher's wait for changes.
    pub(crate) const CHECK_EVERY_MS: i32 = 100;

    /// [`Shutdown::CHECK_EVERY_MS`] as a duration.
    pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(Self::CHECK_EVERY_MS as u64);

    /// A flag not yet raised, that no signal raises (a thread's, a test's):
    /// `Leave::Interrupted` leaves it with 1, a plain failure.
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag not yet raised; `interrupted_exit` as in [`Shutdown::on_signals`].
    fn with_interrupted_exit(interrupted_exit: i32) -> Self {
        Shutdown(Arc::new(State {
            stop: AtomicBool::new(false),
            interrupted_exit,
            idle_exit: AtomicI32::new(BUSY),
            reload: AtomicBool::new(false),
        }))
    }

    /// A flag raised by SIGINT and SIGTERM (a second one exits at once,
    /// with `interrupted_exit`), and by SIGHUP or not, as `hangup` says.
    /// The exit code is the program's (its `--help` lists its codes).
    ///
    /// Ctrl-C is ctrlc's; SIGTERM and SIGHUP come to a thread of signal-hook's,
    /// which tells them apart (ctrlc cannot), so that a server reloads on SIGHUP.
    pub fn on_signals(hangup: Hangup, interrupted_exit: u8) -> Result<Self, SignalError> {
        use signal_hook::consts::{SIGHUP, SIGTERM};
        let shutdown = Shutdown::with_interrupted_exit(interrupted_exit.into());
        let state = Arc::clone(&shutdown.0);
        ctrlc::set_handler(move || state.on_stop_signal())?;
        let mut signals =
            signal_hook::iterator::Signals::new([SIGTERM, SIGHUP]).map_err(SignalError::Other)?;
        let state = Arc::clone(&shutdown.0);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    match (signal, hangup) {
                        (SIGHUP, Hangup::Reloads) => state.reload.store(true, Ordering::SeqCst),
                        _ => state.on_stop_signal(),
                    }
                }
            })
            .map_err(SignalError::Other)?;
        Ok(shutdown)
    }

    /// Whether SIGHUP asked for a reload since the last call.
    pub(crate) fn take_reload(&self) -> bool {
        self.0.reload.swap(false, Ordering::SeqCst)
    }

    /// Runs a blocking read of input during which a signal exits at once, as
    /// `leave` says.
    ///
    /// For waits that cannot look at the flag (a line editor, a read of stdin)
    /// and leave nothing unfinished when cut short.
    pub(crate) fn exit_if_signalled_during<T>(&self, leave: Leave, wait: impl FnOnce() -> T) -> T {
        let code = match leave {
            Leave::Done => 0,
            Leave::Interrupted => self.0.interrupted_exit,
        };
        if self.is_triggered() {
            std::process::exit(code);
        }
        self.0.idle_exit.store(code, Ordering::SeqCst);
        let result = wait();
        self.0.idle_exit.store(BUSY, Ordering::SeqCst);
        result
    }

    /// Asks every holder of this flag to stop.
    pub fn trigger(&self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }

    /// Whether a stop has been asked for.
    pub(crate) fn is_triggered(&self) -> bool {
        self.0.stop.load(Ordering::Relaxed)
    }

    /// Sleeps for `duration` unless a stop is asked for; `false` if it was.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        loop {
            if self.is_triggered() {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Self::CHECK_EVERY));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_returns_early_once_triggered() {
        let shutdown = Shutdown::new();
        let other = shutdown.clone();
        let started = Instant::now();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            other.trigger();
        });
        assert!(!shutdown.sleep(Duration::from_secs(30)));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn sleep_completes_when_not_triggered() {
        assert!(Shutdown::new().sleep(Duration::from_millis(10)));
    }
}
