//! The server: bind a REP socket, then answer every request with the board.

use std::io::Write;

use std::path::PathBuf;

use crate::board::BoardError;
use crate::protocol::{self, Limits, ProtocolError, Request};
use crate::shutdown::Shutdown;
use crate::storage::{self, StorageError, StorageOptions, Store, UpdateError};

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

impl Listen {
    /// What names the default state file: the port, or the endpoint for non-TCP ones.
    fn state_key(&self) -> Result<String, StorageError> {
        let endpoint = match self {
            Listen::PortHost { port: 0, .. } => {
                return Err(StorageError::NoStableKey("port 0".into()));
            }
            Listen::PortHost { port, .. } => return Ok(format!("port-{port}")),
            Listen::Endpoints(endpoints) => endpoints.first().map(String::as_str).unwrap_or(""),
        };
        if let Some(port) = endpoint
            .strip_prefix("tcp://")
            .and_then(|rest| rest.rsplit(':').next())
        {
            return match port.parse::<u16>() {
                Ok(port) if port != 0 => Ok(format!("port-{port}")),
                _ => Err(StorageError::NoStableKey(endpoint.to_owned())),
            };
        }
        let key: String = endpoint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Ok(key)
    }
}

/// Where the board is kept.
#[derive(Debug, Clone)]
pub enum StateConfig {
    /// Nowhere: lost when the server stops (`--in-memory`).
    InMemory,
    /// In a state file; `None` for the default path keyed by the port.
    File {
        /// `--state PATH`, if given.
        path: Option<PathBuf>,
        /// Sync policy, compaction size, repair.
        options: StorageOptions,
    },
}

/// Everything the server needs to know, as given on the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: Listen,
    /// Where the board is kept.
    pub state: StateConfig,
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
    /// The state file could not be opened, read or kept.
    #[error(transparent)]
    Storage(#[from] StorageError),
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

/// Opens the state, binds, announces, and serves until `shutdown` is raised.
pub fn run(config: &Config, shutdown: &Shutdown) -> Result<(), ServerError> {
    // Before binding: a server that cannot keep its state must not take the port.
    let (mut store, summary) = open_store(config)?;
    let context = zmq::Context::new();
    let (socket, bound) = bind(&context, &config.listen.endpoints(), &config.limits)?;
    for endpoint in &bound {
        println!("{}", waiting_line(&config.listen, endpoint));
    }
    eprintln!("{summary}");
    let served = serve(&socket, &mut store, config, shutdown);
    // Flush whatever happens to the loop: every acknowledged update goes to disk.
    let closed = store.close();
    served?;
    Ok(closed?)
}

/// The store the config asks for, and a line saying where it is.
///
/// Warnings (a torn record dropped, a repair) go to stderr at once.
pub fn open_store(config: &Config) -> Result<(Store, String), ServerError> {
    match &config.state {
        StateConfig::InMemory => Ok((
            Store::in_memory(config.max_entries),
            "State: in memory only (--in-memory); the board is lost when the server stops.".into(),
        )),
        StateConfig::File { path, options } => {
            let path = match path {
                Some(path) => path.clone(),
                None => storage::default_path(&config.listen.state_key()?)?,
            };
            let (store, report) = Store::open(&path, options, config.max_entries)?;
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            let summary = format!(
                "State: {} ({} entries restored, fsync {}).",
                path.display(),
                report.restored,
                options.fsync
            );
            Ok((store, summary))
        }
    }
}

/// Answers requests on a bound REP socket until `shutdown` is raised.
///
/// No request can end this loop: bad ones get an `error: ` reply and change
/// nothing. Only a broken socket does.
pub fn serve(
    socket: &zmq::Socket,
    store: &mut Store,
    config: &Config,
    shutdown: &Shutdown,
) -> Result<(), ServerError> {
    while !shutdown.is_triggered() {
        maintain(store);
        match socket.poll(zmq::POLLIN, IDLE_POLL_MS) {
            Ok(0) | Err(zmq::Error::EINTR) => continue,
            Ok(_) => {}
            Err(source) => return Err(socket_error("poll the socket")(source)),
        }
        // Answer everything already queued before polling again.
        while !shutdown.is_triggered() && answer_one(socket, store, config)? {
            maintain(store);
        }
    }
    Ok(())
}

/// The log's periodic duties; a failure is reported and serving goes on.
fn maintain(store: &mut Store) {
    if let Err(err) = store.maintain() {
        eprintln!("warning: {}", crate::error_chain(&err));
    }
}

/// Receives and answers one request; `false` when none was waiting.
fn answer_one(
    socket: &zmq::Socket,
    store: &mut Store,
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
        apply(&request, store, config)
    };
    match outcome {
        Ok(()) => send_reply(socket, store.encoded()),
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
    /// The update could not be stored; the details go to the server's log, not the client.
    #[error("the server cannot store updates right now; try again later")]
    Unstored,
}

/// Applies one single-frame request to the board.
fn apply(frame: &[u8], store: &mut Store, config: &Config) -> Result<(), Rejected> {
    match protocol::parse_request(frame, &config.limits)? {
        Request::Poll => Ok(()),
        Request::Update { name, status } => {
            match store.update(name, status) {
                Ok(_) => {}
                Err(UpdateError::Board(err)) => return Err(err.into()),
                Err(UpdateError::Storage(err)) => {
                    eprintln!("error: {}", crate::error_chain(&err));
                    return Err(Rejected::Unstored);
                }
            }
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
