//! A watcher's SUB socket on the server's publisher: opened with the
//! client's login, and drained in bounded batches.

use std::collections::VecDeque;
use std::time::Instant;

use crate::shutdown::Shutdown;

use super::request::Client;
use super::request_error::RequestError;

/// Most published messages taken off the socket at once.
const DRAIN_AT_ONCE: usize = 1024;

/// Most changes a watcher queues before it misses some (then catches up from a snapshot).
const SUBSCRIBE_HWM: i32 = 100_000;

/// A SUB socket on the server's publisher.
pub(super) struct Subscription {
    socket: zmq::Socket,
    pub(super) endpoint: String,
    pub(super) last_heard: Instant,
    pub(super) ever_heard: bool,
    /// Silent from the start, and a request was sent to see whether the
    /// server itself is there: if it answers and this stays silent, it is
    /// given up.
    pub(super) doubted: bool,
}

impl Subscription {
    /// Subscribes to everything `endpoint` publishes, with the context
    /// and login of `client` (the publisher of a server with --auth wants
    /// the same login).
    pub(super) fn open(client: &Client, endpoint: &str) -> Result<Subscription, zmq::Error> {
        let socket = client.context().socket(zmq::SUB)?;
        client.log_in(&socket)?;
        // LINGER 0: a subscriber has nothing to deliver at exit.
        socket.set_linger(0)?;
        socket.set_rcvhwm(SUBSCRIBE_HWM)?;
        socket.set_ipv6(true)?;
        socket.set_subscribe(b"")?;
        socket.connect(endpoint)?;
        Ok(Subscription {
            socket,
            endpoint: endpoint.to_owned(),
            last_heard: Instant::now(),
            ever_heard: false,
            doubted: false,
        })
    }

    /// Waits up to [`Shutdown::CHECK_EVERY`] for published messages and
    /// queues what has come, up to [`DRAIN_AT_ONCE`]; whether any came.
    pub(super) fn receive(&mut self, into: &mut VecDeque<Vec<u8>>) -> Result<bool, RequestError> {
        let readable = match self
            .socket
            .poll(zmq::POLLIN, Shutdown::CHECK_EVERY_MS.into())
        {
            Ok(n) => n > 0,
            Err(zmq::Error::EINTR) => false,
            Err(source) => {
                return Err(RequestError::Socket {
                    action: "wait for changes",
                    source,
                });
            }
        };
        if !readable {
            return Ok(false);
        }
        self.last_heard = Instant::now();
        self.ever_heard = true;
        for _ in 0..DRAIN_AT_ONCE {
            match self.socket.recv_bytes(zmq::DONTWAIT) {
                Ok(frame) => into.push_back(frame),
                Err(_) => break,
            }
        }
        Ok(true)
    }
}
