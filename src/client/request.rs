//! The client side: one request, one reply, never an endless wait.
//!
//! This is the Lazy Pirate pattern of the ZeroMQ guide: wait a bounded time
//! for each reply, and on silence close the REQ socket (its state machine is
//! stuck waiting for a reply that may never come), open a fresh one and send
//! again, a bounded number of times.
//!
//! Each socket is watched through libzmq's socket monitor while it waits, so
//! that a refused login is told from a dead server at once: libzmq does not
//! reconnect after an authentication failure, and a retry would not help.
//!
//! Given several endpoints (`endpoints.rs`), a try that times out, or finds
//! nothing listening, moves on to the next one; so does an update that a
//! gateway without quorum refuses (`error: unavailable: …`), once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::monitor::MonitorEvent;
use crate::protocol::{ERROR_PREFIX, Refusal};
use crate::shutdown::Shutdown;

use super::endpoints::Endpoints;
use super::login::Login;
use super::probe::{self, Greeting};
pub use super::request_error::RequestError;
use super::request_error::socket_error;

/// Default wait for one reply, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 2500;

/// Default number of tries per request.
pub const DEFAULT_RETRIES: u32 = 3;

/// A REQ connection to one server at a time that retries, reconnects, fails
/// over to the next server and gives up in time.
pub struct Client {
    context: zmq::Context,
    endpoints: Endpoints,
    /// The program's name, the prefix of what is said on stderr.
    program: &'static str,
    timeout: Duration,
    retries: u32,
    login: Option<Login>,
    connection: Option<Connection>,
}

/// A REQ socket and the monitor that reports how its connection went.
struct Connection {
    socket: zmq::Socket,
    monitor: zmq::Socket,
    /// Whether a TCP connection was ever made: a retry before that is a
    /// refused connection.
    connected: bool,
    /// Handshakes that failed with no detail so far (see [`NO_DETAIL_TRIES`]).
    failed_handshakes: u32,
    /// What the peer's greeting said, looked at after the first handshake
    /// that failed with no detail.
    greeting: Greeting,
    /// Whether the handshake of the current TCP connection has ended, well
    /// or with a reason said: a disconnection before that is the peer
    /// refusing our kind of socket, which libzmq does not report.
    handshake_ended: bool,
}

/// Handshakes that fail with no detail before the peer is taken for one that
/// does not speak ZeroMQ, when its greeting could not be read (see
/// `probe`). A status server whose security differs from ours often ends a
/// handshake that way too (it closes before we have read its greeting:
/// EPIPE), but libzmq reconnects, and about every other try says "mechanism
/// mismatch" (measured: 0.6 of tries fail with no detail, so 15 in a row is
/// one in 2 000 on an idle machine, more under load; at [`RECONNECT_MS`]
/// that is 0.4 s). Where the greeting can be read, it decides instead.
const NO_DETAIL_TRIES: u32 = 15;

/// How soon libzmq connects again after a failed handshake (its default is
/// 100 ms): the failures above are told apart in a fraction of a second.
const RECONNECT_MS: i32 = 25;

/// The events that tell what became of the connection.
const WATCHED: i32 = zmq_sys::ZMQ_EVENT_CONNECTED as i32
    | zmq_sys::ZMQ_EVENT_CONNECT_RETRIED as i32
    | zmq_sys::ZMQ_EVENT_DISCONNECTED as i32
    | zmq_sys::ZMQ_EVENT_HANDSHAKE_SUCCEEDED as i32
    | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL as i32
    | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL as i32
    | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_AUTH as i32;

impl Client {
    /// A client for `endpoints` (one `&str`, or several), logging in as
    /// `login` if given; nothing is connected until the first request.
    pub fn new(
        endpoints: impl Into<Endpoints>,
        timeout: Duration,
        retries: u32,
        login: Option<Login>,
    ) -> Self {
        Client::in_context(zmq::Context::new(), endpoints, timeout, retries, login)
    }

    /// As [`Client::new`], on a context shared with other clients (one
    /// short-lived client per request, say, without a context each).
    pub fn in_context(
        context: zmq::Context,
        endpoints: impl Into<Endpoints>,
        timeout: Duration,
        retries: u32,
        login: Option<Login>,
    ) -> Self {
        Client {
            context,
            endpoints: endpoints.into(),
            program: "status_client",
            timeout,
            retries: retries.max(1),
            login,
            connection: None,
        }
    }

    /// Another client to the same server, with the same settings and login,
    /// on a context of its own (for a thread of its own).
    /// It starts at the endpoint in use.
    pub(crate) fn sibling(&self) -> Client {
        Client::new(
            self.endpoints.clone(),
            self.timeout,
            self.retries,
            self.login.clone(),
        )
        .speaking_as(self.program)
    }

    /// The same client, saying `program: …` when it fails over (its default
    /// is `status_client`).
    pub fn speaking_as(mut self, program: &'static str) -> Client {
        self.program = program;
        self
    }

    /// The endpoint in use.
    pub fn endpoint(&self) -> &str {
        self.endpoints.current()
    }

    /// Every endpoint, and which one is in use.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Moves on to the next endpoint for `why`, said on stderr; `false`
    /// (and nothing done) with one endpoint.
    pub(crate) fn fail_over(&mut self, why: impl std::fmt::Display) -> bool {
        let moved = self.endpoints.fail_over(self.program, why);
        if moved {
            self.connection = None;
        }
        moved
    }

    /// The ZeroMQ context, for other sockets to the same server (a subscriber).
    pub(crate) fn context(&self) -> &zmq::Context {
        &self.context
    }

    /// Sets this client's login on another socket to the same server (a
    /// subscriber), before it connects.
    pub(crate) fn log_in(&self, socket: &zmq::Socket) -> Result<(), zmq::Error> {
        match &self.login {
            Some(login) => login.apply(socket),
            None => Ok(()),
        }
    }

    /// How long each try waits for its reply.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The login this client gives, if any.
    pub(crate) fn login(&self) -> Option<&Login> {
        self.login.as_ref()
    }

    /// Gives `login` from the next connection on (the one open is closed).
    pub(crate) fn set_login(&mut self, login: Option<Login>) {
        self.login = login;
        self.connection = None;
    }

    /// Sends `request` and returns the reply frame, retrying on silence.
    ///
    /// With several endpoints, each try that meets silence or a refused
    /// connection moves on to the next; an `error: unavailable: …` reply
    /// (a gateway without quorum: the update was not taken) is sent once
    /// to an endpoint not yet asked, tries permitting. A refusal of any
    /// other kind is an answer.
    pub fn request(
        &mut self,
        request: &[u8],
        shutdown: &Shutdown,
    ) -> Result<Vec<u8>, RequestError> {
        let tries = self.endpoints.tries(self.retries);
        let several = self.endpoints.several();
        let mut refused_every_time = true;
        let mut unavailable_moved = false;
        for tried in 1..=tries {
            self.send(request)?;
            let why = match self.wait_for_reply(shutdown) {
                Ok(Some(reply)) => {
                    // Each try moves one endpoint on: the next has not been
                    // asked in this request while the tries so far are
                    // fewer than the endpoints. One that has would only
                    // trade its refusal for another's.
                    let next_unasked = tried < tries
                        && usize::try_from(tried).is_ok_and(|t| t < self.endpoints.all().len());
                    let unavailable = match unavailable(&reply) {
                        Some(text) if several && next_unasked && !unavailable_moved => text,
                        _ => return Ok(reply),
                    };
                    unavailable_moved = true;
                    refused_every_time = false;
                    unavailable
                }
                // A REQ that sent and got nothing cannot send again: start over.
                Ok(None) => {
                    self.connection = None;
                    refused_every_time = false;
                    format!("no reply in {} ms", self.timeout.as_millis())
                }
                Err(RequestError::NothingListens { .. }) if several => {
                    self.connection = None;
                    "connection refused".to_owned()
                }
                Err(err) => {
                    self.connection = None;
                    return Err(err);
                }
            };
            if tried < tries {
                self.fail_over(why);
            }
        }
        let timeout_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX);
        let endpoint = match several {
            true => self.endpoints.to_string(),
            false => self.endpoints.current().to_owned(),
        };
        Err(match several && refused_every_time {
            true => RequestError::NothingListens { endpoint },
            false => RequestError::NoReply {
                endpoint,
                tries,
                timeout_ms,
            },
        })
    }

    /// Sends `request` on the open connection, or on a fresh one if that
    /// one cannot take it.
    fn send(&mut self, request: &[u8]) -> Result<(), RequestError> {
        // DONTWAIT: a REQ whose peer ended the session (libzmq gives up on a
        // connection after a protocol error, such as a login the server no
        // longer takes) has nowhere to queue, and a blocking send would wait
        // for ever. A fresh socket always has its queue, and its handshake
        // says what is wrong.
        let reused = self.connection.is_some();
        let sent = self.connected()?.socket.send(request, zmq::DONTWAIT);
        match sent {
            Err(zmq::Error::EAGAIN) if reused => {
                self.connection = None;
                self.connected()?
                    .socket
                    .send(request, zmq::DONTWAIT)
                    .map_err(socket_error("send the request"))
            }
            sent => sent.map_err(socket_error("send the request")),
        }
    }

    /// The open connection, opening a fresh one if needed.
    fn connected(&mut self) -> Result<&Connection, RequestError> {
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => self.open()?,
        };
        Ok(self.connection.insert(connection))
    }

    fn open(&mut self) -> Result<Connection, RequestError> {
        let socket = self
            .context
            .socket(zmq::REQ)
            .map_err(socket_error("create a REQ socket"))?;
        // LINGER 0: a request to a dead server must not block exit.
        socket.set_linger(0).map_err(socket_error("set LINGER"))?;
        socket.set_ipv6(true).map_err(socket_error("enable IPv6"))?;
        socket
            .set_reconnect_ivl(RECONNECT_MS)
            .map_err(socket_error("set RECONNECT_IVL"))?;
        self.log_in(&socket)
            .map_err(socket_error("set the login"))?;
        // Unique in the process: clients may share a context (status_web's posts).
        static OPENED: AtomicU64 = AtomicU64::new(0);
        let number = OPENED.fetch_add(1, Ordering::Relaxed);
        let watch = format!("inproc://status-client-monitor-{number}");
        socket
            .monitor(&watch, WATCHED)
            .map_err(socket_error("monitor the socket"))?;
        let monitor = self
            .context
            .socket(zmq::PAIR)
            .map_err(socket_error("create a monitor socket"))?;
        monitor.set_linger(0).map_err(socket_error("set LINGER"))?;
        monitor
            .connect(&watch)
            .map_err(socket_error("connect the monitor"))?;
        socket
            .connect(self.endpoints.current())
            .map_err(|source| RequestError::Connect {
                endpoint: self.endpoints.current().to_owned(),
                source,
            })?;
        Ok(Connection {
            socket,
            monitor,
            connected: false,
            failed_handshakes: 0,
            greeting: Greeting::Unknown,
            handshake_ended: false,
        })
    }

    /// Waits up to the timeout for the reply; `None` on silence. A refused
    /// connection or a failed handshake ends the wait at once with what it means.
    fn wait_for_reply(&mut self, shutdown: &Shutdown) -> Result<Option<Vec<u8>>, RequestError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let Some(connection) = &mut self.connection else {
                return Ok(None);
            };
            if shutdown.is_triggered() {
                return Err(RequestError::Interrupted);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let slice = left.min(Shutdown::CHECK_EVERY);
            let mut items = [
                connection.socket.as_poll_item(zmq::POLLIN),
                connection.monitor.as_poll_item(zmq::POLLIN),
            ];
            match zmq::poll(&mut items, slice.as_millis().max(1) as i64) {
                Ok(0) | Err(zmq::Error::EINTR) => continue,
                Ok(_) => {}
                Err(source) => {
                    return Err(RequestError::Socket {
                        action: "wait for the reply",
                        source,
                    });
                }
            }
            let (reply_ready, event_ready) = (items[0].is_readable(), items[1].is_readable());
            if reply_ready {
                let reply = connection
                    .socket
                    .recv_bytes(0)
                    .map_err(socket_error("receive the reply"))?;
                return Ok(Some(reply));
            }
            if event_ready && let Some(err) = self.connection_event() {
                return Err(err);
            }
        }
    }

    /// Reads one monitor event; what it means for the user, if it ends the request.
    fn connection_event(&mut self) -> Option<RequestError> {
        let connection = self.connection.as_mut()?;
        let MonitorEvent { event, value } = MonitorEvent::next(&connection.monitor)?;
        let endpoint = self.endpoints.current().to_owned();
        if matches!(
            event,
            zmq_sys::ZMQ_EVENT_HANDSHAKE_SUCCEEDED
                | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
                | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
        ) {
            connection.handshake_ended = true;
        }
        match (event, &self.login) {
            (zmq_sys::ZMQ_EVENT_CONNECTED, _) => {
                connection.connected = true;
                connection.handshake_ended = false;
                None
            }
            (zmq_sys::ZMQ_EVENT_HANDSHAKE_SUCCEEDED, _) => None,
            // Closed in the handshake with no reason said: libzmq drops a
            // peer whose kind of socket does not go with ours (and does not
            // connect again). A server's publisher is the one such peer a
            // user meets; anything else is left to the timeout.
            (zmq_sys::ZMQ_EVENT_DISCONNECTED, _) if !connection.handshake_ended => {
                connection.handshake_ended = true;
                probe::is_publisher(&self.context, self.endpoints.current(), self.login.as_ref())
                    .then_some(RequestError::Publisher { endpoint })
            }
            (zmq_sys::ZMQ_EVENT_DISCONNECTED, _) => None,
            // Retried before it ever connected: the connection was refused.
            (zmq_sys::ZMQ_EVENT_CONNECT_RETRIED, _) if !connection.connected => {
                Some(RequestError::NothingListens { endpoint })
            }
            (zmq_sys::ZMQ_EVENT_CONNECT_RETRIED, _) => None,
            (zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, Some(login)) => {
                Some(RequestError::LoginRefused {
                    endpoint,
                    who: login.who(),
                    why: login.refusal(),
                })
            }
            (zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, None) => {
                Some(RequestError::LoginWanted { endpoint })
            }
            // Both ends speak ZeroMQ, with different security: a login was
            // wanted and not given, or given and not wanted.
            (zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, login)
                if value == zmq_sys::ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH =>
            {
                Some(match login {
                    Some(_) => RequestError::LoginUnwanted { endpoint },
                    None => RequestError::LoginWanted { endpoint },
                })
            }
            (zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, _) => {
                connection.failed_handshakes += 1;
                let first = connection.failed_handshakes == 1;
                let greeting = match first {
                    true => probe::greeting(self.endpoints.current()),
                    false => connection.greeting.clone(),
                };
                let connection = self.connection.as_mut()?;
                connection.greeting = greeting.clone();
                self.what_closed(greeting, first)
            }
            _ => Some(RequestError::NotZeroMq { endpoint }),
        }
    }

    /// What a handshake that failed with no detail means, from the peer's
    /// `greeting` (looked at just now if `first`).
    fn what_closed(&self, greeting: Greeting, first: bool) -> Option<RequestError> {
        let endpoint = self.endpoints.current().to_owned();
        let ours = probe::mechanism(self.login.as_ref());
        let failed = self.connection.as_ref().map_or(0, |c| c.failed_handshakes);
        match greeting {
            // Both ends speak ZeroMQ, with different security.
            Greeting::Mechanism(theirs) if theirs != ours => Some(match self.login {
                None => RequestError::LoginWanted { endpoint },
                Some(_) => RequestError::LoginUnwanted { endpoint },
            }),
            // Our security: a publisher that wants a login closes on us once
            // it has read what kind of socket we are; else a passing failure
            // (a restart), left to the tries.
            Greeting::Mechanism(_) => (first
                && probe::is_publisher(
                    &self.context,
                    self.endpoints.current(),
                    self.login.as_ref(),
                ))
            .then_some(RequestError::Publisher { endpoint }),
            Greeting::NotZeroMq => Some(RequestError::NotZeroMq { endpoint }),
            Greeting::Unknown if failed < NO_DETAIL_TRIES => None,
            Greeting::Unknown => Some(RequestError::NotZeroMq { endpoint }),
        }
    }
}

/// The refusal after `error: ` if `reply` is an `unavailable` one (a gateway
/// that cannot reach its cluster's quorum: the update was not taken).
fn unavailable(reply: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(reply)
        .ok()?
        .strip_prefix(ERROR_PREFIX)?;
    match Refusal::parse(text) {
        (Some(Refusal::Unavailable), _) => Some(text.to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn only_an_unavailable_refusal_is_sent_elsewhere() {
        assert_eq!(
            unavailable(b"error: unavailable: no quorum").as_deref(),
            Some("unavailable: no quorum")
        );
        for answer in [
            &b"error: forbidden: user 'alice' may not set 'bob'"[..],
            b"error: unavailable",
            b"- alice: error: unavailable: not a refusal\n",
            b"",
        ] {
            assert_eq!(unavailable(answer), None, "{answer:?}");
        }
    }

    /// A REP socket with PLAIN server security on a free port; its port.
    fn plain_rep(context: &zmq::Context) -> (zmq::Socket, u16) {
        let socket = context.socket(zmq::REP).expect("REP");
        socket.set_linger(0).expect("LINGER");
        socket.set_plain_server(true).expect("PLAIN");
        socket.set_rcvtimeo(30_000).expect("RCVTIMEO");
        socket.bind("tcp://127.0.0.1:0").expect("bind");
        let bound = socket
            .get_last_endpoint()
            .expect("endpoint")
            .expect("utf-8");
        let port = bound
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        (socket, port)
    }

    /// A ZeroMQ server without logins, as far as the greeting goes, on
    /// `port`: it greets each connection with the NULL mechanism and sends
    /// on the channel when the peer has hung up.
    fn null_greeter(port: u16) -> mpsc::Receiver<()> {
        use std::io::{Read, Write};
        // libzmq lets the port go in its I/O thread a moment after the
        // socket closes: try until it is free, within a bound.
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match std::net::TcpListener::bind(("127.0.0.1", port)) {
                Ok(listener) => break listener,
                Err(e)
                    if Instant::now() < deadline && e.kind() == std::io::ErrorKind::AddrInUse =>
                {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("bind port {port}: {e}"),
            }
        };
        let mut greeting = [0u8; 64];
        greeting[0] = 0xff;
        greeting[9] = 0x7f;
        greeting[10] = 3;
        greeting[12..16].copy_from_slice(b"NULL");
        let (hung_up, told) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                let _ = stream.write_all(&greeting);
                let mut sink = [0u8; 256];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                if hung_up.send(()).is_err() {
                    return;
                }
            }
        });
        told
    }

    /// Takes every PLAIN login made in `context`, for as long as it lives.
    fn take_every_login(context: &zmq::Context) {
        let handler = context.socket(zmq::REP).expect("ZAP REP");
        // Ends with the test: idle for 30 s, or the context ending (ETERM).
        handler.set_rcvtimeo(30_000).expect("RCVTIMEO");
        handler.bind("inproc://zeromq.zap.01").expect("bind ZAP");
        std::thread::spawn(move || {
            while let Ok(request) = handler.recv_multipart(0) {
                let (Some(version), Some(id)) = (request.first(), request.get(1)) else {
                    return;
                };
                let reply: [&[u8]; 6] = [version, id, b"200", b"OK", b"alice", b""];
                if handler.send_multipart(reply, 0).is_err() {
                    return;
                }
            }
        });
    }

    #[test]
    fn a_login_the_restarted_server_does_not_take_is_said_not_waited_on_for_ever() {
        let context = zmq::Context::new();
        take_every_login(&context);
        let (first, port) = plain_rep(&context);
        let login = Login::Plain {
            user: "alice".into(),
            password: "secret".into(),
        };
        let endpoint = format!("tcp://127.0.0.1:{port}");
        let mut client = Client::new(&endpoint, Duration::from_secs(5), 1, Some(login));
        let shutdown = Shutdown::new();
        let answer = std::thread::spawn(move || {
            let asked = first.recv_bytes(0).expect("the request");
            first.send(&asked, 0).expect("the reply");
            first
        });
        assert_eq!(client.request(b"_:", &shutdown).expect("answered"), b"_:");
        drop(answer.join().expect("the first server"));

        // The same port, now a server without logins: it greets with NULL,
        // and the idle client, reconnecting, fails the handshake and
        // closes; libzmq then ends that session for good.
        let second = null_greeter(port);
        second
            .recv_timeout(Duration::from_secs(30))
            .expect("the idle client came back and hung up within 30 s");
        // libzmq takes the dead session's queue off the socket as the socket
        // handles its commands: ask it until it says it cannot send.
        let socket = &client.connection.as_ref().expect("kept open").socket;
        let deadline = Instant::now() + Duration::from_secs(10);
        while socket.get_events().expect("events").contains(zmq::POLLOUT) {
            assert!(
                Instant::now() < deadline,
                "the queue is still there after 10 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }

        let (done, result) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(client.request(b"_:", &shutdown));
        });
        let said = result
            .recv_timeout(Duration::from_secs(30))
            .expect("the request ends instead of waiting for ever");
        assert!(
            matches!(said, Err(RequestError::LoginUnwanted { .. })),
            "{said:?}"
        );
    }
}
