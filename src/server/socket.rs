//! The request socket's I/O: a ROUTER speaking the REP side of the
//! envelope. Takes whole requests with their envelope and caller, waits for
//! a request or a finished sync, and sends replies behind their envelope
//! without ever blocking on one peer.

use std::sync::Arc;

use crate::protocol;
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::sys::RawSocket;

use super::auth::Caller;
use super::console::{self, log_err};
use super::error::{Rejected, ServerError, socket_error};

/// The server's request socket, with its raw handle for boards sent without
/// a copy.
#[derive(Clone, Copy)]
pub(super) struct RequestSocket<'a> {
    socket: &'a zmq::Socket,
    raw: RawSocket,
}

/// A request taken from the socket.
pub(super) struct Received {
    /// The REQ envelope: the peer's identity and the routing frames, up to and
    /// including the empty delimiter. Sent back in front of the reply.
    pub(super) envelope: Vec<zmq::Message>,
    /// What followed the delimiter: one frame for a well-formed request.
    pub(super) body: Vec<zmq::Message>,
    /// Who sent it, as its login says.
    pub(super) caller: Caller,
    /// From where (`Peer-Address`), with `--log-time`.
    pub(super) peer: Option<String>,
}

impl<'a> RequestSocket<'a> {
    /// `raw` must be `socket`'s own handle, valid as long as `socket`.
    pub(super) fn new(socket: &'a zmq::Socket, raw: RawSocket) -> RequestSocket<'a> {
        RequestSocket { socket, raw }
    }

    /// Waits up to [`Shutdown::CHECK_EVERY`] for a request (if `requests`) or
    /// a finished sync of `store`; says which came, as (request, sync).
    pub(super) fn wait(&self, requests: bool, store: &Store) -> Result<(bool, bool), ServerError> {
        let sync_fd = store
            .sync_fd()
            .filter(|_| store.is_syncing() || store.has_feed());
        let mut items: Vec<zmq::PollItem> = requests
            .then(|| self.socket.as_poll_item(zmq::POLLIN))
            .into_iter()
            .chain(sync_fd.map(|fd| zmq::PollItem::from_fd(fd, zmq::POLLIN)))
            .collect();
        match zmq::poll(&mut items, Shutdown::CHECK_EVERY_MS.into()) {
            Ok(0) | Err(zmq::Error::EINTR) => Ok((false, false)),
            Ok(_) => {
                let sync_item = usize::from(requests);
                Ok((
                    requests && items[0].is_readable(),
                    items.get(sync_item).is_some_and(zmq::PollItem::is_readable),
                ))
            }
            Err(source) => Err(socket_error("poll the socket")(source)),
        }
    }

    /// Receives one request (waiting at most RCVTIMEO unless `flags` is
    /// DONTWAIT); `None` when nothing came. `logins`: the server has
    /// `--auth`, so the caller is the login's user.
    pub(super) fn receive(
        &self,
        flags: i32,
        logins: bool,
    ) -> Result<Option<Received>, ServerError> {
        loop {
            let Some(mut frames) = self.receive_frames(flags)? else {
                return Ok(None);
            };
            // ROUTER puts the peer's identity first; a REQ peer adds an empty
            // delimiter before its body. Like a REP socket, drop what has no
            // delimiter.
            let Some(delimiter) = frames.iter().skip(1).position(|f| f.is_empty()) else {
                log_err!("dropped a message that has no REQ envelope");
                continue;
            };
            let mut body = frames.split_off(delimiter + 2);
            let caller = match logins {
                false => Caller::Open,
                // The login's user, which libzmq attaches to every frame from it.
                true => match body.last_mut().or(frames.last_mut()) {
                    Some(frame) => match frame.gets("User-Id") {
                        Some(user) if !user.is_empty() => Caller::User(user.to_owned()),
                        _ => Caller::Anonymous,
                    },
                    None => Caller::Anonymous,
                },
            };
            let peer = match console::detailed() {
                true => body
                    .last_mut()
                    .or(frames.last_mut())
                    .and_then(|frame| frame.gets("Peer-Address"))
                    .map(str::to_owned),
                false => None,
            };
            return Ok(Some(Received {
                envelope: frames,
                body,
                caller,
                peer,
            }));
        }
    }

    /// Receives one whole message; `None` when nothing came.
    fn receive_frames(&self, flags: i32) -> Result<Option<Vec<zmq::Message>>, ServerError> {
        let first = match self.socket.recv_msg(flags) {
            Ok(frame) => frame,
            Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => return Ok(None),
            Err(source) => return Err(socket_error("receive a request")(source)),
        };
        let mut frames = vec![first];
        // The rest of a multipart message has arrived with its first frame: no wait.
        while self
            .socket
            .get_rcvmore()
            .map_err(socket_error("read RCVMORE"))?
        {
            match self.socket.recv_msg(zmq::DONTWAIT) {
                Ok(frame) => frames.push(frame),
                Err(zmq::Error::EINTR) => {}
                Err(source) => return Err(socket_error("receive a request part")(source)),
            }
        }
        Ok(Some(frames))
    }

    /// Sends the board behind `envelope`, without copying it.
    pub(super) fn send_board(&self, envelope: Vec<zmq::Message>, board: Arc<Vec<u8>>) {
        let sent = send_envelope(self.socket, envelope).and_then(|to_send| match to_send {
            true => crate::sys::send_shared(self.raw, board),
            false => Ok(()),
        });
        if let Err(err) = sent {
            log_err!("could not send a reply: {err}");
        }
    }

    /// Answers one request with an error, and logs it.
    pub(super) fn reject(&self, envelope: Vec<zmq::Message>, err: &Rejected) {
        log_err!("rejected request: {err}");
        let reply = protocol::format_error(err.refusal(), err);
        self.send_reply(envelope, reply.as_bytes());
    }

    /// Sends a reply behind its envelope; a failure concerns one client only and is logged.
    pub(super) fn send_reply(&self, envelope: Vec<zmq::Message>, reply: &[u8]) {
        let sent = send_envelope(self.socket, envelope).and_then(|to_send| match to_send {
            true => self.socket.send(reply, zmq::DONTWAIT),
            false => Ok(()),
        });
        if let Err(err) = sent {
            log_err!("could not send a reply: {err}");
        }
    }
}

/// Sends a reply's envelope, the peer's routing id first; the body follows.
/// `Ok(false)` when the reply is dropped instead, as a REP socket would: the
/// peer has gone, or it has [`REPLY_HWM`](super::config::REPLY_HWM) replies
/// unread. Never blocks.
fn send_envelope(socket: &zmq::Socket, envelope: Vec<zmq::Message>) -> Result<bool, zmq::Error> {
    let mut frames = envelope.into_iter();
    let Some(first) = frames.next() else {
        return Ok(false);
    };
    // Kept for a second try: a refused send consumes its message.
    let routing_id = first.to_vec();
    let more = zmq::SNDMORE | zmq::DONTWAIT;
    match socket.send(first, more) {
        Ok(()) => {}
        Err(zmq::Error::EHOSTUNREACH) => return Ok(false),
        Err(zmq::Error::EAGAIN) => {
            // libzmq learns that a peer has read its replies from a command it
            // takes in its own time (once a millisecond while busy), so a REQ
            // peer that polls fast can look full with nothing unread. Taking the
            // commands now (ZMQ_EVENTS does) tells a slow word from a full peer.
            socket.get_events()?;
            match socket.send(&routing_id[..], more) {
                Ok(()) => {}
                Err(zmq::Error::EAGAIN | zmq::Error::EHOSTUNREACH) => return Ok(false),
                Err(err) => return Err(err),
            }
        }
        Err(err) => return Err(err),
    }
    frames.try_for_each(|frame| socket.send(frame, more))?;
    Ok(true)
}
