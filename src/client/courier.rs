//! Interactive mode's delivery of a status typed while the server was away:
//! a thread that keeps sending it, on a connection of its own, and says above
//! the prompt when it got through. The person keeps typing meanwhile; a new
//! status replaces the one waiting.
//!
//! Away is whatever a restart can make of the server (see `link`): stopped,
//! or back with `--auth` turned on or off. Each new reason is said once; a
//! server that now wants a password waits for the person to press Enter,
//! which asks for it at the prompt.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::shutdown::Shutdown;
use crate::side_thread::SideThread;
use crate::visible::visible;

use super::link::Away;
use super::refresh::Own;
use super::render::visible_board;
use super::request::Client;
use super::request_error::RequestError;
use super::say::Say;

/// A status to deliver: the request, and the text the server keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Parcel {
    /// `NAME: TEXT`.
    pub(super) request: String,
    /// `TEXT`.
    pub(super) text: String,
}

/// The thread and the status it holds; stopped on drop (a round of tries in
/// progress is cut short by its own shutdown flag).
pub(super) struct Courier {
    waiting: Arc<Mutex<Option<Parcel>>>,
    /// Why the server is away, as said last (by the courier or the prompt).
    said: Arc<Mutex<Option<Away>>>,
    done: Arc<AtomicBool>,
    /// Stopped and joined on drop.
    _thread: SideThread,
}

impl Courier {
    /// Starts a courier that sends with `client` and tells `say`; `own` is
    /// the client's own status, which a delivery sets. Fails only if the
    /// system cannot start a thread.
    pub(super) fn start(mut client: Client, mut say: Say, own: Own) -> std::io::Result<Courier> {
        let waiting: Arc<Mutex<Option<Parcel>>> = Arc::new(Mutex::new(None));
        let said: Arc<Mutex<Option<Away>>> = Arc::new(Mutex::new(None));
        let done = Arc::new(AtomicBool::new(false));
        let (held, finished) = (Arc::clone(&waiting), Arc::clone(&done));
        let last_said = Arc::clone(&said);
        let thread = SideThread::spawn("courier", move |stopping: &Shutdown| {
            let said_now = || *last_said.lock().unwrap_or_else(|p| p.into_inner());
            let note = |away| *last_said.lock().unwrap_or_else(|p| p.into_inner()) = away;
            while !stopping.is_triggered() {
                let parcel = held.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let Some(parcel) = parcel else {
                    stopping.sleep(Shutdown::CHECK_EVERY);
                    continue;
                };
                let mut posting = own.posting();
                match client.request(parcel.request.as_bytes(), stopping) {
                    Ok(reply) => {
                        let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
                        if held.as_ref() == Some(&parcel) {
                            *held = None;
                        }
                        drop(held);
                        let board = String::from_utf8_lossy(&reply);
                        let back = match said_now() {
                            Some(Away::LoginUnwanted | Away::LoginWanted | Away::LoginRefused) => {
                                "the server takes the login again"
                            }
                            _ => "the server is back",
                        };
                        match board.strip_prefix(crate::protocol::ERROR_PREFIX) {
                            Some(why) => say(format!(
                                "status_client: {back}, and refused {:?}: {}",
                                parcel.request,
                                visible(why)
                            )),
                            None => {
                                posting.posted(&parcel.text);
                                say(format!(
                                    "status_client: {back}: sent {:?}\n{}",
                                    parcel.request,
                                    visible_board(&board)
                                ));
                            }
                        }
                        note(None);
                    }
                    Err(RequestError::Interrupted) => break,
                    Err(err) => match Away::of(&err, true) {
                        Some(away) => {
                            drop(posting);
                            // The courier starts after the server answered or went
                            // away: a login that stops fitting is a restart to ride out.
                            if said_now() != Some(away) {
                                note(Some(away));
                                if away != Away::Silent {
                                    say(format!(
                                        "status_client: {}; {}",
                                        visible(&away.says(&err)),
                                        what_now(away)
                                    ));
                                }
                            }
                            // Silence has waited its tries; the rest come at once.
                            if !matches!(err, RequestError::NoReply { .. }) {
                                stopping.sleep(client.timeout());
                            }
                        }
                        None => {
                            let err = visible(&err.to_string()).into_owned();
                            say(format!(
                                "status_client: could not send {:?}: {err}",
                                parcel.request
                            ));
                            *held.lock().unwrap_or_else(|p| p.into_inner()) = None;
                        }
                    },
                }
            }
            finished.store(true, Ordering::SeqCst);
        })?;
        Ok(Courier {
            waiting,
            said,
            done,
            _thread: thread,
        })
    }

    /// Gives the courier `parcel` to send, in place of any it holds; `away`
    /// is why the server is away, if the caller has just said so.
    pub(super) fn hand(&self, parcel: Parcel, away: Option<Away>) {
        if away.is_some() {
            *self.said.lock().unwrap_or_else(|p| p.into_inner()) = away;
        }
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) = Some(parcel);
    }

    /// The status it holds, not yet sent.
    pub(super) fn holds(&self) -> Option<Parcel> {
        if self.done.load(Ordering::SeqCst) {
            return None;
        }
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What becomes of the status held while the server is away for `away`.
pub(super) fn what_now(away: Away) -> &'static str {
    match away {
        Away::LoginWanted | Away::LoginRefused => {
            "your status is kept: press Enter to log in, and it is sent"
        }
        Away::LoginUnwanted => {
            "your status is kept and sent once the server takes your login again \
             (type another to replace it; Ctrl-C to leave)"
        }
        Away::Silent | Away::NotZeroMq => {
            "your status is kept and sent when the server is back \
             (type another to replace it; Ctrl-C to leave)"
        }
    }
}
