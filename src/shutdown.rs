//! A shutdown flag that Ctrl-C, SIGTERM or a test can raise, and the reload
//! that SIGHUP asks a server for.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// Exit code after a second Ctrl-C, when the first did not end the program.
pub const FORCED_EXIT_CODE: i32 = 130;

/// Stored in `idle_exit` while the program has something to finish.
const BUSY: i32 = -1;

#[derive(Debug)]
struct State {
    stop: AtomicBool,
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
            std::process::exit(FORCED_EXIT_CODE);
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
        Shutdown(Arc::new(State {
            stop: AtomicBool::new(false),
            idle_exit: AtomicI32::new(BUSY),
            reload: AtomicBool::new(false),
        }))
    }
}

impl Shutdown {
    /// How often every wait looks at the flag, in ms: well under the one
    /// second a stop may take. The one setting for the server's receive
    /// timeout, the client's reply wait and a watcher's wait for changes.
    pub const CHECK_EVERY_MS: i32 = 100;

    /// [`Shutdown::CHECK_EVERY_MS`] as a duration.
    pub const CHECK_EVERY: Duration = Duration::from_millis(Self::CHECK_EVERY_MS as u64);

    /// A flag not yet raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag raised by SIGINT and SIGTERM (a second one exits at once), and
    /// by SIGHUP or not, as `hangup` says.
    ///
    /// Ctrl-C is ctrlc's; SIGTERM and SIGHUP come to a thread of signal-hook's,
    /// which tells them apart (ctrlc cannot), so that a server reloads on SIGHUP.
    pub fn on_signals(hangup: Hangup) -> Result<Self, SignalError> {
        use signal_hook::consts::{SIGHUP, SIGTERM};
        let shutdown = Shutdown::new();
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
    pub fn take_reload(&self) -> bool {
        self.0.reload.swap(false, Ordering::SeqCst)
    }

    /// Runs a blocking read of input during which a signal exits at once with `code`.
    ///
    /// For waits that cannot look at the flag (a line editor, a read of stdin)
    /// and leave nothing unfinished when cut short.
    pub fn exit_if_signalled_during<T>(&self, code: i32, wait: impl FnOnce() -> T) -> T {
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
    pub fn is_triggered(&self) -> bool {
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
