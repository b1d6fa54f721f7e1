//! A connection for long-running feeds (a watcher, a pipe, the web gateway)
//! that rides out the server's absence: it says once when the server stops
//! answering and once when it is back, and knows since when it is away.
//!
//! Once the server has answered, whatever a restart can turn it into is
//! ridden out the same way: a server that now wants a login, or takes none,
//! or refuses ours (restarted with or without `--auth`, or with other
//! users), or a port that does not speak ZeroMQ for a while. Before the
//! first answer these are mistakes in how the client was started, said and
//! ended at once.

use std::time::{Duration, Instant};

use crate::clock::now_ms;
use crate::shutdown::Shutdown;

use super::request::Client;
use super::request_error::RequestError;
use super::say::eprintln_visible;

/// A [`Client`] and what it knows of the server's presence.
pub struct Link {
    /// The connection itself, for requests that must not wait out an outage.
    pub client: Client,
    /// The program's name, the prefix of what it says on stderr.
    program: &'static str,
    /// Since when the server has not answered, while it does not.
    outage: Option<Instant>,
    /// What the outage was last said to be: each new reason is said once.
    said: Option<Away>,
    /// Whether the server has ever answered.
    answered: bool,
    /// When the server last answered or published, on our monotonic clock
    /// and by the wall clock (ms since the Unix epoch).
    last_contact: (Instant, u64),
}

impl Link {
    /// A link through `client` (to its endpoints, failing over), for
    /// `program`, which says on stderr what becomes of the server.
    pub fn new(client: Client, program: &'static str) -> Link {
        Link {
            client: client.speaking_as(program),
            program,
            outage: None,
            said: None,
            answered: false,
            last_contact: (Instant::now(), now_ms()),
        }
    }

    /// The server's endpoint in use.
    pub(crate) fn endpoint(&self) -> &str {
        self.client.endpoint()
    }

    /// The program's name, for what it says on stderr.
    pub(crate) fn program(&self) -> &'static str {
        self.program
    }

    /// One round of tries of `request`: the reply, or `None` if the server is
    /// away (said on stderr when an outage begins or changes its reason; and
    /// its end).
    pub(crate) fn round(
        &mut self,
        request: &str,
        shutdown: &Shutdown,
    ) -> Result<Option<Vec<u8>>, RequestError> {
        match self.request(request, shutdown) {
            Ok(reply) => Ok(Some(reply)),
            Err(err) => match self.away(&err) {
                Some(away) => {
                    if self.said != Some(away) {
                        eprintln_visible(format_args!(
                            "{}: {} (still trying; Ctrl-C to stop)",
                            self.program,
                            away.says(&err)
                        ));
                    }
                    self.went_away(away);
                    // Said at once by the system: wait before the next try.
                    // Silence has waited its tries already.
                    let at_once = !matches!(err, RequestError::NoReply { .. });
                    if at_once && !shutdown.sleep(self.client.timeout()) {
                        return Err(RequestError::Interrupted);
                    }
                    Ok(None)
                }
                None => Err(err),
            },
        }
    }

    /// One request with its tries, kept track of: the reply, or why none came.
    pub(crate) fn request(
        &mut self,
        request: &str,
        shutdown: &Shutdown,
    ) -> Result<Vec<u8>, RequestError> {
        let reply = self.client.request(request.as_bytes(), shutdown)?;
        if self.outage.take().is_some() {
            eprintln_visible(format_args!(
                "{}: {} answers again",
                self.program,
                self.client.endpoint()
            ));
        }
        self.said = None;
        self.answered = true;
        self.heard();
        Ok(reply)
    }

    /// Whether `err` means the server is away for now (see the module's
    /// comment), and how; `None` if it ends the feed.
    pub(crate) fn away(&self, err: &RequestError) -> Option<Away> {
        Away::of(err, self.answered)
    }

    /// Notes that the server is away for `away`'s reason, as said by the caller.
    pub(crate) fn went_away(&mut self, away: Away) {
        self.said = Some(away);
        self.outage.get_or_insert_with(Instant::now);
    }

    /// Something came from the server: a reply or a published message.
    pub(crate) fn heard(&mut self) {
        self.last_contact = (Instant::now(), now_ms());
    }

    /// Whether the server is away: the last round went unanswered.
    pub(crate) fn is_away(&self) -> bool {
        self.outage.is_some()
    }

    /// How long since the server was last heard.
    pub(crate) fn silent_for(&self) -> Duration {
        self.last_contact.0.elapsed()
    }

    /// When the server was last heard, by the wall clock (ms since the Unix epoch).
    pub fn last_contact_ms(&self) -> u64 {
        self.last_contact.1
    }
}

/// Why a server that answered before does not now, as said to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Away {
    /// No reply, or nothing listens: stopped, or restarting.
    Silent,
    /// It wants a login, and we have none: restarted with `--auth`.
    LoginWanted,
    /// It takes no login, and we give one: restarted without `--auth`.
    LoginUnwanted,
    /// It refuses our login: restarted with other users.
    LoginRefused,
    /// Something that does not speak ZeroMQ has the port for now.
    NotZeroMq,
}

impl Away {
    /// What `err` means for a feed, if the server is only away for now;
    /// `answered` says whether it has answered before.
    pub(crate) fn of(err: &RequestError, answered: bool) -> Option<Away> {
        match err {
            RequestError::NoReply { .. } | RequestError::NothingListens { .. } => {
                Some(Away::Silent)
            }
            _ if !answered => None,
            RequestError::LoginWanted { .. } => Some(Away::LoginWanted),
            RequestError::LoginUnwanted { .. } => Some(Away::LoginUnwanted),
            RequestError::LoginRefused { .. } => Some(Away::LoginRefused),
            RequestError::NotZeroMq { .. } => Some(Away::NotZeroMq),
            _ => None,
        }
    }

    /// What to say about it, once: what happened, and what it may mean.
    pub(crate) fn says(self, err: &RequestError) -> String {
        let endpoint = err.endpoint().unwrap_or_default();
        match self {
            Away::Silent | Away::NotZeroMq | Away::LoginRefused => err.to_string(),
            Away::LoginWanted => {
                format!("{endpoint} wants a login now (has it restarted with --auth?)")
            }
            Away::LoginUnwanted => format!(
                "{endpoint} does not take this login now (has it restarted without --auth?)"
            ),
        }
    }
}
