//! A thread beside the serve loop (the ZAP handler, the accept watch) that
//! uses a socket of the server's context: stopped and joined on drop, so that
//! it has closed its socket before the context ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use super::ServerError;

/// The running thread and the flag that asks it to end.
pub(super) struct SideThread {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl SideThread {
    /// Runs `body` on a thread named `name`; it must return soon after the
    /// flag it is given is raised (it polls with a timeout).
    pub(super) fn spawn(
        name: &str,
        body: impl FnOnce(&AtomicBool) + Send + 'static,
    ) -> Result<SideThread, ServerError> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || body(&stopping))
            .map_err(|_| ServerError::Socket {
                action: "start a thread",
                source: zmq::Error::ENOMEM,
            })?;
        Ok(SideThread {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for SideThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
