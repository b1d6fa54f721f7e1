//! The server: bind the socket, then answer every request with the board.

use std::collections::VecDeque;
use std::io::Write;

use std::path::PathBuf;

use crate::board::BoardError;
use crate::protocol::{self, Limits, ProtocolError, Request};
use crate::shutdown::Shutdown;
use crate::storage::{self, Committed, StorageError, StorageOptions, Store, UpdateError};

/// How often the loop looks at the shutdown flag while idle, in milliseconds.
const IDLE_POLL_MS: i64 = 100;

/// LINGER for the server socket: time to flush the last replies at shutdown, never a hang.
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

/// Creates the server socket with its limits and binds it to every endpoint.
///
/// Returns the socket and the endpoints as bound (a `*` or `0` port resolved).
pub fn bind(
    context: &zmq::Context,
    endpoints: &[String],
    limits: &Limits,
) -> Result<(zmq::Socket, Vec<String>), ServerError> {
    // ROUTER speaking the REP side of the envelope, so that a batch of requests
    // can be stored with one fsync and then answered together; REQ clients
    // (ours and the original) cannot tell it from a REP socket.
    let socket = context
        .socket(zmq::ROUTER)
        .map_err(socket_error("create a ROUTER socket"))?;
    socket
        .set_linger(LINGER_MS)
        .map_err(socket_error("set LINGER"))?;
    // Bounds the serve loop's blocking receive, so it sees a shutdown in time.
    socket
        .set_rcvtimeo(IDLE_POLL_MS as i32)
        .map_err(socket_error("set RCVTIMEO"))?;
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

/// Answers requests on a bound socket until `shutdown` is raised.
///
/// Each round takes the requests already queued (up to [`MAX_BATCH`]). Polls
/// and bad requests are answered at once; updates are staged and written
/// together, then answered once they are durable (under `--fsync always`, when
/// the sync thread has caught up with them, while later rounds go on). No
/// request can end this loop: bad ones get an `error: ` reply and change
/// nothing. Only a broken socket does. At shutdown, what is in hand is
/// finished and answered.
pub fn serve(
    socket: &zmq::Socket,
    store: &mut Store,
    config: &Config,
    shutdown: &Shutdown,
) -> Result<(), ServerError> {
    // Updates staged, not yet written; and written batches waiting for their sync.
    let mut waiting = Vec::new();
    let mut syncing = VecDeque::new();
    while !shutdown.is_triggered() {
        if store.is_syncing() {
            // Wait for a request or the sync thread, whichever comes first.
            let (readable, synced) = wait(Some(socket), store)?;
            if synced {
                finish_syncs(socket, store, &mut syncing);
            }
            if readable {
                take_batch(socket, store, config, &mut waiting, zmq::DONTWAIT)?;
            }
        } else {
            // Only requests to wait for: a blocking receive (RCVTIMEO bounds it)
            // costs one system call fewer per round than poll, then receive.
            take_batch(socket, store, config, &mut waiting, 0)?;
        }
        // Before the commit: once the batches in flight have landed, a due
        // compaction runs here, ahead of the next write (it waits for them).
        maintain(store);
        commit(socket, store, &mut waiting, &mut syncing);
    }
    // Finish what is in hand; a sync thread that never answers cannot hold us.
    // New requests are not taken any more, so only the sync thread is waited on.
    let deadline = std::time::Instant::now() + SHUTDOWN_GRACE;
    while (store.is_syncing() || !waiting.is_empty()) && std::time::Instant::now() < deadline {
        if store.is_syncing() && wait(None, store)?.1 {
            finish_syncs(socket, store, &mut syncing);
        }
        commit(socket, store, &mut waiting, &mut syncing);
    }
    Ok(())
}

/// Longest a stop waits for updates in hand to become durable.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The log's periodic duties; a failure is reported and serving goes on.
fn maintain(store: &mut Store) {
    if let Err(err) = store.maintain() {
        eprintln!("warning: {}", crate::error_chain(&err));
    }
}

/// Waits up to [`IDLE_POLL_MS`] for a request (if `socket` is given) or a
/// finished sync; says which came, as (request, sync).
fn wait(socket: Option<&zmq::Socket>, store: &Store) -> Result<(bool, bool), ServerError> {
    let sync_fd = store.sync_fd().filter(|_| store.is_syncing());
    let mut items: Vec<zmq::PollItem> = socket
        .map(|s| s.as_poll_item(zmq::POLLIN))
        .into_iter()
        .chain(sync_fd.map(|fd| zmq::PollItem::from_fd(fd, zmq::POLLIN)))
        .collect();
    match zmq::poll(&mut items, IDLE_POLL_MS) {
        Ok(0) | Err(zmq::Error::EINTR) => Ok((false, false)),
        Ok(_) => {
            let sync_item = usize::from(socket.is_some());
            Ok((
                socket.is_some() && items[0].is_readable(),
                items.get(sync_item).is_some_and(zmq::PollItem::is_readable),
            ))
        }
        Err(source) => Err(socket_error("poll the socket")(source)),
    }
}

/// Most requests taken per round: bounds the wait of the first of them.
pub const MAX_BATCH: usize = 256;

/// A request taken from the socket, waiting for its answer.
struct Pending {
    /// The REQ envelope: the peer's identity and the routing frames, up to and
    /// including the empty delimiter. Sent back in front of the reply.
    envelope: Vec<zmq::Message>,
    /// `None` for the board; the error otherwise.
    rejected: Option<Rejected>,
}

/// Takes the queued requests (up to [`MAX_BATCH`]): answers polls and bad
/// requests at once, stages updates into `waiting`.
fn take_batch(
    socket: &zmq::Socket,
    store: &mut Store,
    config: &Config,
    waiting: &mut Vec<Pending>,
    first_flags: i32,
) -> Result<(), ServerError> {
    let mut flags = first_flags;
    for _ in 0..MAX_BATCH {
        let Some(mut frames) = receive(socket, flags)? else {
            break;
        };
        flags = zmq::DONTWAIT;
        // ROUTER puts the peer's identity first; a REQ peer adds an empty delimiter
        // before its body. Like a REP socket, drop what has no delimiter.
        let Some(delimiter) = frames.iter().skip(1).position(|f| f.is_empty()) else {
            eprintln!("dropped a message that has no REQ envelope");
            continue;
        };
        let body = frames.split_off(delimiter + 2);
        let staged = match body.as_slice() {
            [] => stage(b"", store, config),
            [frame] => stage(frame, store, config),
            parts => Err(ProtocolError::Multipart { parts: parts.len() }.into()),
        };
        match staged {
            Ok(true) => waiting.push(Pending {
                envelope: frames,
                rejected: None,
            }),
            Ok(false) => send_reply(socket, frames, store.encoded()),
            Err(err) => reject(socket, frames, &err),
        }
    }
    Ok(())
}

/// Receives one whole message (waiting at most RCVTIMEO unless `flags` is
/// DONTWAIT); `None` when nothing came.
fn receive(socket: &zmq::Socket, flags: i32) -> Result<Option<Vec<zmq::Message>>, ServerError> {
    let first = match socket.recv_msg(flags) {
        Ok(frame) => frame,
        Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => return Ok(None),
        Err(source) => return Err(socket_error("receive a request")(source)),
    };
    let mut frames = vec![first];
    // The rest of a multipart message has arrived with its first frame: no wait.
    while socket.get_rcvmore().map_err(socket_error("read RCVMORE"))? {
        match socket.recv_msg(zmq::DONTWAIT) {
            Ok(frame) => frames.push(frame),
            Err(zmq::Error::EINTR) => {}
            Err(source) => return Err(socket_error("receive a request part")(source)),
        }
    }
    Ok(Some(frames))
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

/// Parses one request and stages its update; `Ok(true)` if it waits for a commit.
fn stage(frame: &[u8], store: &mut Store, config: &Config) -> Result<bool, Rejected> {
    let (name, status) = match protocol::parse_request(frame, &config.limits)? {
        Request::Poll => return Ok(false),
        Request::Update { name, status } => (name, status),
    };
    match store.stage(name, status) {
        Ok(()) => {}
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
    Ok(true)
}

/// Writes the staged updates: answers them now, or queues them for their sync.
fn commit(
    socket: &zmq::Socket,
    store: &mut Store,
    waiting: &mut Vec<Pending>,
    syncing: &mut VecDeque<Vec<Pending>>,
) {
    if waiting.is_empty() {
        return;
    }
    match store.commit() {
        Ok(Committed::Applied) => answer(socket, store, waiting),
        Ok(Committed::Syncing) => syncing.push_back(std::mem::take(waiting)),
        Ok(Committed::Deferred) => {}
        Err(err) => unstored(socket, store, waiting, &err),
    }
}

/// Answers the batches that finished syncs made durable, oldest first.
fn finish_syncs(socket: &zmq::Socket, store: &mut Store, syncing: &mut VecDeque<Vec<Pending>>) {
    match store.finish_syncs() {
        Ok(done) => {
            for mut batch in syncing.drain(..done.min(syncing.len())) {
                answer(socket, store, &mut batch);
            }
        }
        Err(err) => {
            for mut batch in syncing.drain(..) {
                unstored(socket, store, &mut batch, &err);
            }
        }
    }
}

/// Answers a batch whose updates could not be stored.
fn unstored(socket: &zmq::Socket, store: &mut Store, batch: &mut Vec<Pending>, err: &StorageError) {
    eprintln!("error: {}", crate::error_chain(err));
    for pending in batch.iter_mut() {
        pending.rejected = Some(Rejected::Unstored);
    }
    answer(socket, store, batch);
}

/// Answers every request of a batch, emptying it.
fn answer(socket: &zmq::Socket, store: &mut Store, batch: &mut Vec<Pending>) {
    for pending in batch.drain(..) {
        match &pending.rejected {
            None => send_reply(socket, pending.envelope, store.encoded()),
            Some(err) => reject(socket, pending.envelope, err),
        }
    }
}

/// Answers one request with an error, and logs it.
fn reject(socket: &zmq::Socket, envelope: Vec<zmq::Message>, err: &Rejected) {
    eprintln!("rejected request: {err}");
    send_reply(socket, envelope, protocol::format_error(err).as_bytes());
}

/// Sends a reply behind its envelope; a failure concerns one client only and is logged.
fn send_reply(socket: &zmq::Socket, envelope: Vec<zmq::Message>, reply: &[u8]) {
    // A ROUTER drops a reply to a peer that has gone or cannot take more: never blocks.
    let sent = envelope
        .into_iter()
        .try_for_each(|frame| socket.send(frame, zmq::SNDMORE))
        .and_then(|()| socket.send(reply, 0));
    if let Err(err) = sent {
        eprintln!("could not send a reply: {err}");
    }
}
