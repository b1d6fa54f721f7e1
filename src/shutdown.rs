//! A shutdown flag that Ctrl-C, SIGTERM or a test can raise.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Exit code after a second Ctrl-C, when the first did not end the program.
pub const FORCED_EXIT_CODE: i32 = 130;

/// A cloneable flag that tells loops to finish what they hold and return.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// A flag not yet raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag raised by SIGINT, SIGTERM or SIGHUP; a second signal exits at once.
    pub fn on_signals() -> Result<Self, ctrlc::Error> {
        let shutdown = Shutdown::new();
        let flag = shutdown.clone();
        ctrlc::set_handler(move || {
            if flag.0.swap(true, Ordering::SeqCst) {
                // The user asked twice: whatever we were finishing is not worth the wait.
                std::process::exit(FORCED_EXIT_CODE);
            }
        })?;
        Ok(shutdown)
    }

    /// Asks every holder of this flag to stop.
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop has been asked for.
    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
