//! Time as the board keeps it: milliseconds since the Unix epoch.
//!
//! The server stamps every status with it, and watchers compute ages against
//! the server's clock. Unit tests set a [`Clock`] by hand, so that ages and
//! expiry are tested without waiting.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch by the system clock (0 if it is before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Where a component reads the time: the system, or (in unit tests) a time set by hand.
#[derive(Debug, Clone, Default)]
pub(crate) enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A time that moves only when a test moves it.
    #[cfg(test)]
    Manual(std::sync::Arc<std::sync::atomic::AtomicU64>),
}

impl Clock {
    /// Now, in milliseconds since the Unix epoch.
    pub(crate) fn now_ms(&self) -> u64 {
        match self {
            Clock::System => now_ms(),
            #[cfg(test)]
            Clock::Manual(at) => at.load(std::sync::atomic::Ordering::SeqCst),
        }
    }

    /// A clock at `start_ms`, and the hand that moves it.
    #[cfg(test)]
    pub(crate) fn manual(start_ms: u64) -> (Clock, std::sync::Arc<std::sync::atomic::AtomicU64>) {
        let at = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(start_ms));
        (Clock::Manual(std::sync::Arc::clone(&at)), at)
    }
}
