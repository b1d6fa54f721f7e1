//! The server loop in this process, with a shutdown trigger: for tests that
//! need the loop, not the process.

#![allow(dead_code, reason = "each test crate uses a few of these items")]

use std::thread;

use super::zeromq::request_text;

/// The server loop on a free loopback port in this process. Stopped on drop.
pub struct InProcess {
    pub endpoint: String,
    shutdown: status_board::shutdown::Shutdown,
    thread: Option<thread::JoinHandle<Result<(), String>>>,
}

/// Starts the server loop in memory on `tcp://127.0.0.1:*`, `configure`d first.
pub fn start_server(configure: impl FnOnce(&mut status_board::server::Config)) -> InProcess {
    use status_board::server::{Config, Server};
    let mut config = Config::in_memory(vec!["tcp://127.0.0.1:*".into()]);
    configure(&mut config);
    let server = Server::open(config).expect("the server opens and binds");
    let endpoint = server.endpoints()[0].clone();
    let shutdown = status_board::shutdown::Shutdown::new();
    let trigger = shutdown.clone();
    let thread = thread::spawn(move || {
        server
            .serve(&trigger)
            .map_err(|e| status_board::error_chain(&e))
    });
    InProcess {
        endpoint,
        shutdown,
        thread: Some(thread),
    }
}

impl InProcess {
    pub fn request_text(&self, frame: &str) -> String {
        request_text(&self.endpoint, frame)
    }

    /// Stops the loop and checks it ended cleanly.
    pub fn stop(mut self) {
        self.shutdown.trigger();
        let thread = self.thread.take().expect("running");
        assert_eq!(thread.join().expect("the loop did not panic"), Ok(()));
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
