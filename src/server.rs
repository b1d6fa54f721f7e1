//! The server: bind a REP socket, then answer every request with the board.

use std::io::Write;

use crate::board::{Board, BoardError};
use crate::protocol::{self, Limits, ProtocolError, Request};
use crate::shutdown::Shutdown;

/// How often the loop looks at the shutdown flag while idle, in milliseconds.
const IDLE_POLL_MS: i64 = 100;

/// LINGER for the REP socket: time to flush the last reply at shutdown, never a hang.
const LINGER_MS: i32 = 200;

/// Bytes past `max_request` that are still read, so a slightly long request
/// gets a clear error reply. Anything larger is refused by libzmq itself
/// (ZMQ_MAXMSGSIZE), which drops the connection without buffering the message.
pub const OVERSIZE_GRACE: usize = 64 * 1024;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// `PORT HOST` as the Python original takes them: `tcp://HOST:PORT`.
    PortHost {
        /// TCP port; 0 picks a free one.
        port: u16,
        /// Interface address, IPv4 or IPv6.
        host: String,
    },
    /// Any ZeroMQ endpoints, such as `tcp://0.0.0.0:2345` or `ipc:///tmp/status.sock`.
    Endpoints(Vec<String>),
}

impl Listen {
    /// The ZeroMQ endpoints to bind.
    pub fn endpoints(&self) -> Vec<String> {
        match self {
            Listen::PortHost { port, host } => vec![protocol::tcp_endpoint(host, *port)],
            Listen::Endpoints(endpoints) => endpoints.clone(),
        }
    }
}

/// Everything the server needs to know, as given on the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: Listen,
    /// Request and name size limits.
    pub limits: Limits,
    /// Most names the board holds.
    pub max_entries: usize,
    /// Leave out the per-request `received name` lines.
    pub quiet: bool,
}

/// Why the server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// An endpoint was malformed, in use, or not ours to bind.
    #[error("cannot bind {endpoint}")]
    Bind {
        /// The endpoint as given.
        endpoint: String,
        /// What libzmq said.
        source: zmq::Error,
    },
    /// A socket operation failed for a reason no request caused.
    #[error("cannot {action}")]
    Socket {
        /// What we were doing.
        action: &'static str,
        /// What libzmq said.
        source: zmq::Error,
    },
}

fn socket_error(action: &'static str) -> impl FnOnce(zmq::Error) -> ServerError {
    move |source| ServerError::Socket { action, source }
}

/// Creates the REP socket with its limits and binds it to every endpoint.
///
/// Returns the socket and the endpoints as bound (a `*` or `0` port resolved).
pub fn bind(
    context: &zmq::Context,
    endpoints: &[String],
    limits: &Limits,
) -> Result<(zmq::Socket, Vec<String>), ServerError> {
    let socket = context
        .socket(zmq::REP)
        .map_err(socket_error("create a REP socket"))?;
    socket
        .set_linger(LINGER_MS)
        .map_err(socket_error("set LINGER"))?;
    let hard_limit = limits.max_request.saturating_add(OVERSIZE_GRACE);
    socket
        .set_maxmsgsize(i64::try_from(hard_limit).unwrap_or(i64::MAX))
        .map_err(socket_error("set MAXMSGSIZE"))?;
    let mut bound = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        // Only where asked for: with IPv6 on, libzmq reports IPv4 binds as `[::ffff:…]`.
        socket
            .set_ipv6(protocol::is_ipv6_endpoint(endpoint))
            .map_err(socket_error("set IPV6"))?;
        socket.bind(endpoint).map_err(|source| ServerError::Bind {
            endpoint: endpoint.clone(),
            source,
        })?;
        let last = socket
            .get_last_endpoint()
            .map_err(socket_error("read the bound endpoint"))?
            .unwrap_or_else(|_| endpoint.clone());
        bound.push(last);
    }
    Ok((socket, bound))
}

/// The line the server prints once it listens; the original's for `PORT HOST`.
pub fn waiting_line(listen: &Listen, bound: &str) -> String {
    match listen {
        Listen::PortHost { host, .. } => {
            let port = bound.rsplit(':').next().unwrap_or(bound);
            format!("Waiting for clients on port '{port}' on host '{host}'.")
        }
        Listen::Endpoints(_) => format!("Waiting for clients on '{bound}'."),
    }
}

/// Binds, announces, and serves until `shutdown` is raised.
pub fn run(config: &Config, shutdown: &Shutdown) -> Result<(), ServerError> {
    let context = zmq::Context::new();
    let (socket, bound) = bind(&context, &config.listen.endpoints(), &config.limits)?;
    for endpoint in &bound {
        println!("{}", waiting_line(&config.listen, endpoint));
    }
    let mut board = Board::new(config.max_entries);
    serve(&socket, &mut board, config, shutdown)
}

/// Answers requests on a bound REP socket until `shutdown` is raised.
///
/// No request can end this loop: bad ones get an `error: ` reply and change
/// nothing. Only a broken socket does.
pub fn serve(
    socket: &zmq::Socket,
    board: &mut Board,
    config: &Config,
    shutdown: &Shutdown,
) -> Result<(), ServerError> {
    while !shutdown.is_triggered() {
        match socket.poll(zmq::POLLIN, IDLE_POLL_MS) {
            Ok(0) | Err(zmq::Error::EINTR) => continue,
            Ok(_) => {}
            Err(source) => return Err(socket_error("poll the socket")(source)),
        }
        // Answer everything already queued before polling again.
        while !shutdown.is_triggered() && answer_one(socket, board, config)? {}
    }
    Ok(())
}

/// Receives and answers one request; `false` when none was waiting.
fn answer_one(
    socket: &zmq::Socket,
    board: &mut Board,
    config: &Config,
) -> Result<bool, ServerError> {
    let request = match socket.recv_msg(zmq::DONTWAIT) {
        Ok(message) => message,
        Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => return Ok(false),
        Err(source) => return Err(socket_error("receive a request")(source)),
    };
    let parts = 1 + drain_more_parts(socket)?;
    let outcome = if parts > 1 {
        Err(ProtocolError::Multipart { parts }.into())
    } else {
        apply(&request, board, config)
    };
    match outcome {
        Ok(()) => send_reply(socket, board.encoded()),
        Err(err) => {
            eprintln!("rejected request: {err}");
            send_reply(socket, protocol::format_error(&err).as_bytes());
        }
    }
    Ok(true)
}

/// Why a request changed nothing; its text is the error reply.
#[derive(Debug, thiserror::Error)]
enum Rejected {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    Board(#[from] BoardError),
}

/// Applies one single-frame request to the board.
fn apply(frame: &[u8], board: &mut Board, config: &Config) -> Result<(), Rejected> {
    match protocol::parse_request(frame, &config.limits)? {
        Request::Poll => Ok(()),
        Request::Update { name, status } => {
            board.set(name, status)?;
            if !config.quiet {
                // Errors writing our own log (a closed stdout) must not stop the service.
                let _ = writeln!(
                    std::io::stdout(),
                    "received name: '{name}' status: '{status}'"
                );
            }
            Ok(())
        }
    }
}

/// Reads and drops the rest of a multipart request; returns how many parts.
fn drain_more_parts(socket: &zmq::Socket) -> Result<usize, ServerError> {
    let mut extra = 0;
    // A multipart message arrives whole, so these never wait.
    while socket.get_rcvmore().map_err(socket_error("read RCVMORE"))? {
        match socket.recv_msg(zmq::DONTWAIT) {
            Ok(_) => extra += 1,
            Err(zmq::Error::EINTR) => {}
            Err(source) => return Err(socket_error("receive a request part")(source)),
        }
    }
    Ok(extra)
}

/// Sends a reply; a failure concerns one client only and is logged, not fatal.
fn send_reply(socket: &zmq::Socket, reply: &[u8]) {
    loop {
        match socket.send(reply, 0) {
            // REP send never blocks: a reply to a vanished client is dropped by libzmq.
            Ok(()) => return,
            Err(zmq::Error::EINTR) => continue,
            Err(err) => {
                eprintln!("could not send a reply: {err}");
                return;
            }
        }
    }
}
