//! The client side: one request, one reply, never an endless wait.
//!
//! This is the Lazy Pirate pattern of the ZeroMQ guide: wait a bounded time
//! for each reply, and on silence close the REQ socket (its state machine is
//! stuck waiting for a reply that may never come), open a fresh one and send
//! again, a bounded number of times.

use std::time::{Duration, Instant};

use crate::shutdown::Shutdown;

/// Default wait for one reply, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 2500;

/// Default number of tries per request.
pub const DEFAULT_RETRIES: u32 = 3;

/// Why a request got no usable reply.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint string is not one libzmq can connect to.
    #[error("cannot connect to {endpoint}")]
    Connect {
        /// The endpoint as given.
        endpoint: String,
        /// What libzmq said.
        source: zmq::Error,
    },
    /// Every try timed out.
    #[error(
        "no reply from {endpoint} after {tries} tries of {timeout_ms} ms each; is status_server running there?"
    )]
    NoReply {
        /// The endpoint asked.
        endpoint: String,
        /// Tries made.
        tries: u32,
        /// Wait per try.
        timeout_ms: u64,
    },
    /// Ctrl-C or SIGTERM arrived while waiting.
    #[error("interrupted")]
    Interrupted,
    /// A socket operation failed for a reason other than silence.
    #[error("cannot {action}")]
    Socket {
        /// What we were doing.
        action: &'static str,
        /// What libzmq said.
        source: zmq::Error,
    },
}

/// A REQ connection to one server that retries, reconnects and gives up in time.
pub struct Client {
    context: zmq::Context,
    endpoint: String,
    timeout: Duration,
    retries: u32,
    socket: Option<zmq::Socket>,
}

impl Client {
    /// A client for `endpoint`; nothing is connected until the first request.
    pub fn new(endpoint: &str, timeout: Duration, retries: u32) -> Self {
        Client {
            context: zmq::Context::new(),
            endpoint: endpoint.to_owned(),
            timeout,
            retries: retries.max(1),
            socket: None,
        }
    }

    /// The ZeroMQ context, for other sockets to the same server (a subscriber).
    pub fn context(&self) -> &zmq::Context {
        &self.context
    }

    /// Sends `request` and returns the reply frame, retrying on silence.
    pub fn request(&mut self, request: &[u8], shutdown: &Shutdown) -> Result<Vec<u8>, ClientError> {
        let timeout = self.timeout;
        for _ in 0..self.retries {
            let socket = self.connected()?;
            socket
                .send(request, 0)
                .map_err(|source| ClientError::Socket {
                    action: "send the request",
                    source,
                })?;
            if wait_readable(socket, timeout, shutdown)? {
                return socket.recv_bytes(0).map_err(|source| ClientError::Socket {
                    action: "receive the reply",
                    source,
                });
            }
            // A REQ that sent and got nothing cannot send again: start over.
            self.socket = None;
        }
        Err(ClientError::NoReply {
            endpoint: self.endpoint.clone(),
            tries: self.retries,
            timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// The open REQ socket, opening and connecting a fresh one if needed.
    fn connected(&mut self) -> Result<&zmq::Socket, ClientError> {
        let socket = match self.socket.take() {
            Some(socket) => socket,
            None => self.open()?,
        };
        Ok(self.socket.insert(socket))
    }

    fn open(&self) -> Result<zmq::Socket, ClientError> {
        {
            let socket = self
                .context
                .socket(zmq::REQ)
                .map_err(|source| ClientError::Socket {
                    action: "create a REQ socket",
                    source,
                })?;
            // LINGER 0: a request to a dead server must not block exit.
            socket.set_linger(0).map_err(|source| ClientError::Socket {
                action: "set LINGER",
                source,
            })?;
            socket
                .set_ipv6(true)
                .map_err(|source| ClientError::Socket {
                    action: "enable IPv6",
                    source,
                })?;
            socket
                .connect(&self.endpoint)
                .map_err(|source| ClientError::Connect {
                    endpoint: self.endpoint.clone(),
                    source,
                })?;
            Ok(socket)
        }
    }
}

/// Waits until `socket` has a reply or `timeout` passes; `Ok(false)` on timeout.
fn wait_readable(
    socket: &zmq::Socket,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<bool, ClientError> {
    let deadline = Instant::now() + timeout;
    loop {
        if shutdown.is_triggered() {
            return Err(ClientError::Interrupted);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let slice = left.min(Shutdown::CHECK_EVERY);
        match socket.poll(zmq::POLLIN, slice.as_millis().max(1) as i64) {
            Ok(0) | Err(zmq::Error::EINTR) => {}
            Ok(_) => return Ok(true),
            Err(source) => {
                return Err(ClientError::Socket {
                    action: "wait for the reply",
                    source,
                });
            }
        }
    }
}
