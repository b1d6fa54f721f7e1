//! Interactive mode's delivery of a status typed while the server was away:
//! a thread that keeps sending it, on a connection of its own, and says above
//! the prompt when it got through. The person keeps typing meanwhile; a new
//! status replaces the one waiting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::shutdown::Shutdown;
use crate::visible::visible;

use super::render::visible_board;
use super::request::{Client, ClientError};

/// Where the courier's news goes: above the prompt, or plain stdout.
pub(super) type Say = Box<dyn FnMut(String) + Send>;

/// The thread and the status it holds; stopped on drop (a round of tries in
/// progress is cut short by its own shutdown flag).
pub(super) struct Courier {
    waiting: Arc<Mutex<Option<String>>>,
    stop: Shutdown,
    done: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Courier {
    /// Starts a courier that sends with `client` and tells `say`.
    pub(super) fn start(mut client: Client, mut say: Say, timeout: std::time::Duration) -> Courier {
        let waiting: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let stop = Shutdown::new();
        let done = Arc::new(AtomicBool::new(false));
        let (held, stopping, finished) = (Arc::clone(&waiting), stop.clone(), Arc::clone(&done));
        let thread = thread::spawn(move || {
            while !stopping.is_triggered() {
                let request = held.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let Some(request) = request else {
                    stopping.sleep(Shutdown::CHECK_EVERY);
                    continue;
                };
                match client.request(request.as_bytes(), &stopping) {
                    Ok(reply) => {
                        let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
                        if held.as_deref() == Some(request.as_str()) {
                            *held = None;
                        }
                        drop(held);
                        let board = String::from_utf8_lossy(&reply);
                        say(format!(
                            "status_client: the server is back: sent {request:?}\n{}",
                            visible_board(&board)
                        ));
                    }
                    Err(ClientError::NoReply { .. }) => {}
                    Err(ClientError::NothingListens { .. }) => {
                        stopping.sleep(timeout);
                    }
                    Err(ClientError::Interrupted) => break,
                    Err(err) => {
                        let err = visible(&err.to_string()).into_owned();
                        say(format!("status_client: could not send {request:?}: {err}"));
                        *held.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    }
                }
            }
            finished.store(true, Ordering::SeqCst);
        });
        Courier {
            waiting,
            stop,
            done,
            thread: Some(thread),
        }
    }

    /// Gives the courier `request` to send, in place of any it holds.
    pub(super) fn hand(&self, request: String) {
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) = Some(request);
    }

    /// The request it holds, not yet sent.
    pub(super) fn holds(&self) -> Option<String> {
        if self.done.load(Ordering::SeqCst) {
            return None;
        }
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for Courier {
    fn drop(&mut self) {
        self.stop.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
