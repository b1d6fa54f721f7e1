//! A connection for long-running feeds (a watcher, a pipe, the web gateway)
//! that rides out the server's absence: it says once when the server stops
//! answering and once when it is back, and knows since when it is away.

use std::time::{Duration, Instant};

use crate::clock::now_ms;
use crate::shutdown::Shutdown;

use super::eprintln_visible;
use super::request::{Client, ClientError};

/// A [`Client`] and what it knows of the server's presence.
pub struct Link {
    /// The connection itself, for requests that must not wait out an outage.
    pub client: Client,
    /// The program's name, the prefix of what it says on stderr.
    program: &'static str,
    endpoint: String,
    timeout: Duration,
    /// Since when the server has not answered, while it does not.
    outage: Option<Instant>,
    /// When the server last answered or published, on our monotonic clock
    /// and by the wall clock (ms since the Unix epoch).
    last_contact: (Instant, u64),
}

impl Link {
    /// A link to `endpoint` through `client`, whose tries wait `timeout` each.
    pub fn new(client: Client, program: &'static str, endpoint: &str, timeout: Duration) -> Link {
        Link {
            client,
            program,
            endpoint: endpoint.to_owned(),
            timeout,
            outage: None,
            last_contact: (Instant::now(), now_ms()),
        }
    }

    /// The server's endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The program's name, for what it says on stderr.
    pub fn program(&self) -> &'static str {
        self.program
    }

    /// One round of tries of `request`: the reply, or `None` if the server is
    /// away (said once, on stderr, when an outage begins; and its end).
    pub fn round(
        &mut self,
        request: &str,
        shutdown: &Shutdown,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        match self.client.request(request.as_bytes(), shutdown) {
            Ok(reply) => {
                if self.outage.take().is_some() {
                    eprintln_visible(format_args!(
                        "{}: {} answers again",
                        self.program, self.endpoint
                    ));
                }
                self.heard();
                Ok(Some(reply))
            }
            Err(err @ (ClientError::NoReply { .. } | ClientError::NothingListens { .. })) => {
                if self.outage.is_none() {
                    eprintln_visible(format_args!(
                        "{}: {err} (still trying; Ctrl-C to stop)",
                        self.program
                    ));
                    self.outage = Some(Instant::now());
                }
                // A refusal is said at once by the system: wait before the
                // next try. Silence has waited its tries already.
                if matches!(err, ClientError::NothingListens { .. })
                    && !shutdown.sleep(self.timeout)
                {
                    return Err(ClientError::Interrupted);
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Something came from the server: a reply or a published message.
    pub fn heard(&mut self) {
        self.last_contact = (Instant::now(), now_ms());
    }

    /// Whether the server is away: the last round went unanswered.
    pub fn is_away(&self) -> bool {
        self.outage.is_some()
    }

    /// How long since the server was last heard.
    pub fn silent_for(&self) -> Duration {
        self.last_contact.0.elapsed()
    }

    /// When the server was last heard, by the wall clock (ms since the Unix epoch).
    pub fn last_contact_ms(&self) -> u64 {
        self.last_contact.1
    }
}
