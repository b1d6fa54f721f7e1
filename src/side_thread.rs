//! A thread beside a program's main loop (the server's ZAP handler and
//! accept watch, the client's courier and refresher): stopped and joined on
//! drop, so that it has closed its sockets before their context ends.

use std::thread;

use crate::shutdown::Shutdown;

/// The running thread and the flag that asks it to end.
pub(crate) struct SideThread {
    stop: Shutdown,
    thread: Option<thread::JoinHandle<()>>,
}

impl SideThread {
    /// Runs `body` on a thread named `name`; it must return soon after the
    /// flag it is given is raised (it waits at most [`Shutdown::CHECK_EVERY`]).
    pub(crate) fn spawn(
        name: &str,
        body: impl FnOnce(&Shutdown) + Send + 'static,
    ) -> std::io::Result<SideThread> {
        let stop = Shutdown::new();
        let stopping = stop.clone();
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || body(&stopping))?;
        Ok(SideThread {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for SideThread {
    fn drop(&mut self) {
        self.stop.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
