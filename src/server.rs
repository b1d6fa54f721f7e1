//! The server: bind the socket, then answer every request with the board.

use std::collections::VecDeque;
use std::io::Write;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::board::{BoardError, What};
use crate::protocol::{self, Event, Limits, Notice, ProtocolError, Request};
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
    /// Where to publish every change (`--publish`); none by default.
    pub publish: Vec<String>,
    /// Remove a status not refreshed for this long (`--ttl`).
    pub ttl: Option<Duration>,
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
    let bound = bind_all(&socket, endpoints)?;
    Ok((socket, bound))
}

/// Binds `socket` to every endpoint; returns them as bound (a `*` or `0` port resolved).
fn bind_all(socket: &zmq::Socket, endpoints: &[String]) -> Result<Vec<String>, ServerError> {
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
    Ok(bound)
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
    let publisher = match config.publish.is_empty() {
        true => None,
        false => Some(bind_publisher(&context, &config.publish)?),
    };
    for endpoint in &bound {
        println!("{}", waiting_line(&config.listen, endpoint));
    }
    eprintln!("{summary}");
    if let Some(publisher) = &publisher {
        for endpoint in &publisher.endpoints {
            eprintln!("Publishing changes on '{endpoint}'.");
        }
    }
    let served = serve(&socket, publisher.as_ref(), &mut store, config, shutdown);
    // Flush whatever happens to the loop: every acknowledged update goes to disk.
    let closed = store.close();
    served?;
    Ok(closed?)
}

/// A bound PUB socket and the endpoints watchers are told to subscribe to.
pub struct Publisher {
    socket: zmq::Socket,
    /// The endpoints as bound (a `*` or `0` port resolved).
    pub endpoints: Vec<String>,
}

/// Most changes queued for one watcher before it misses some (and then
/// catches up from a snapshot): bounds the memory a stalled watcher costs.
const PUBLISH_HWM: i32 = 50_000;

/// LINGER for the publisher: changes in flight at exit are not worth a wait.
const PUBLISH_LINGER_MS: i32 = 100;

/// How often the publisher says it is alive when nothing changes.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Creates the PUB socket that carries every change and binds it.
pub fn bind_publisher(
    context: &zmq::Context,
    endpoints: &[String],
) -> Result<Publisher, ServerError> {
    let socket = context
        .socket(zmq::PUB)
        .map_err(socket_error("create a PUB socket"))?;
    socket
        .set_linger(PUBLISH_LINGER_MS)
        .map_err(socket_error("set LINGER"))?;
    socket
        .set_sndhwm(PUBLISH_HWM)
        .map_err(socket_error("set SNDHWM"))?;
    let endpoints = bind_all(&socket, endpoints)?;
    Ok(Publisher { socket, endpoints })
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

/// Answers requests on a bound socket until `shutdown` is raised; publishes
/// every change on `publisher`, if given.
///
/// Each round takes the requests already queued (up to [`MAX_BATCH`]). Polls,
/// snapshots and bad requests are answered at once; updates and clears are
/// staged and written together, then answered once they are durable (under
/// `--fsync always`, when the sync thread has caught up with them, while later
/// rounds go on). No request can end this loop: bad ones get an `error: `
/// reply and change nothing. Only a broken socket does. At shutdown, what is
/// in hand is finished and answered.
pub fn serve(
    socket: &zmq::Socket,
    publisher: Option<&Publisher>,
    store: &mut Store,
    config: &Config,
    shutdown: &Shutdown,
) -> Result<(), ServerError> {
    if publisher.is_some() {
        store.record_changes();
    }
    let ttl_ms = config
        .ttl
        .map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    store.set_ttl(ttl_ms);
    let mut server = Serving {
        socket,
        store,
        config,
        live: Live {
            epoch: new_epoch(),
            ttl_ms,
            publisher,
            last_heartbeat: Instant::now(),
            buffer: Vec::new(),
        },
        waiting: Vec::new(),
        syncing: VecDeque::new(),
    };
    while !shutdown.is_triggered() {
        if server.store.is_syncing() {
            // Wait for a request or the sync thread, whichever comes first.
            let (readable, synced) = wait(Some(socket), server.store)?;
            if synced {
                server.finish_syncs();
            }
            if readable {
                server.take_batch(zmq::DONTWAIT)?;
            }
        } else {
            // Only requests to wait for: a blocking receive (RCVTIMEO bounds it)
            // costs one system call fewer per round than poll, then receive.
            server.take_batch(0)?;
        }
        if let Err(err) = server.store.expire() {
            eprintln!(
                "warning: cannot expire statuses: {}",
                crate::error_chain(&err)
            );
        }
        // Before the commit: once the batches in flight have landed, a due
        // compaction runs here, ahead of the next write (it waits for them).
        maintain(server.store);
        server.commit();
        server.publish();
    }
    // Finish what is in hand; a sync thread that never answers cannot hold us.
    // New requests are not taken any more, so only the sync thread is waited on.
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while (server.store.is_syncing() || !server.waiting.is_empty()) && Instant::now() < deadline {
        if server.store.is_syncing() && wait(None, server.store)?.1 {
            server.finish_syncs();
        }
        server.commit();
        server.publish();
    }
    Ok(())
}

/// An identifier for this run of the server: sequence numbers restart with it,
/// so a watcher that sees a new one starts over from a snapshot.
fn new_epoch() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS's randomness; the time and pid make a
    // repeat within one boot impossible even if it were not.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(storage::now_ms());
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// The serve loop's state: the socket, the board, and the requests in hand.
struct Serving<'a> {
    socket: &'a zmq::Socket,
    store: &'a mut Store,
    config: &'a Config,
    live: Live<'a>,
    /// Updates staged, not yet written.
    waiting: Vec<Pending>,
    /// Written batches waiting for their sync, oldest first; one per batch in
    /// flight in the store, some of them empty (an expiry nobody waits for).
    syncing: VecDeque<Vec<Pending>>,
}

/// What watchers see beyond the board: this run's epoch, and the publisher.
struct Live<'a> {
    epoch: String,
    /// `--ttl` in ms, said in every snapshot.
    ttl_ms: Option<u64>,
    publisher: Option<&'a Publisher>,
    last_heartbeat: Instant,
    /// Reused for each published message.
    buffer: Vec<u8>,
}

impl Live<'_> {
    /// The snapshot reply: header, then one timed line per entry.
    fn snapshot(&self, store: &mut Store) -> Vec<u8> {
        let header = protocol::SnapshotHeader {
            epoch: self.epoch.clone(),
            seq: store.seq(),
            now_ms: storage::now_ms(),
            publish: self
                .publisher
                .map(|p| p.endpoints.clone())
                .unwrap_or_default(),
            ttl_ms: self.ttl_ms,
        };
        let body = store.timed_encoding();
        let mut out = Vec::with_capacity(body.len() + 128);
        protocol::encode_snapshot_header(&mut out, &header);
        out.extend_from_slice(body);
        out
    }

    /// Sends the board's new changes, or a heartbeat when it is time for one.
    fn publish(&mut self, store: &mut Store) {
        let Some(publisher) = self.publisher else {
            return;
        };
        let changes = store.take_changes();
        for change in &changes {
            let (event, at_ms) = match &change.what {
                What::Set(status) => (
                    Event::Set {
                        name: &change.name,
                        status: &status.text,
                    },
                    status.set_at_ms,
                ),
                What::Removed { why, at_ms } => (
                    Event::Removed {
                        name: &change.name,
                        why: *why,
                    },
                    *at_ms,
                ),
            };
            self.send(publisher, change.seq, at_ms, event);
        }
        if !changes.is_empty() {
            // A change says the publisher is alive as well as a heartbeat does.
            self.last_heartbeat = Instant::now();
        } else if self.last_heartbeat.elapsed() >= HEARTBEAT {
            self.send(publisher, store.seq(), storage::now_ms(), Event::Heartbeat);
            self.last_heartbeat = Instant::now();
        }
    }

    fn send(&mut self, publisher: &Publisher, seq: u64, at_ms: u64, event: Event<'_>) {
        self.buffer.clear();
        let notice = Notice {
            epoch: &self.epoch,
            seq,
            at_ms,
            event,
        };
        protocol::encode_notice(&mut self.buffer, &notice);
        // PUB never blocks: a watcher past its high-water mark misses changes,
        // sees the gap in the numbers and fetches a snapshot.
        if let Err(err) = publisher.socket.send(&self.buffer[..], zmq::DONTWAIT) {
            eprintln!("could not publish a change: {err}");
        }
    }
}

/// Longest a stop waits for updates in hand to become durable.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
    /// What it gets once its change is durable.
    answer: Answer,
}

/// The reply a request gets.
enum Answer {
    /// The plain board: a poll, or an update from any client.
    Board,
    /// The snapshot: an extension request.
    Snapshot,
    /// Refused.
    Rejected(Rejected),
}

impl Serving<'_> {
    /// Takes the queued requests (up to [`MAX_BATCH`]): answers polls and bad
    /// requests at once, stages updates into `waiting`.
    fn take_batch(&mut self, first_flags: i32) -> Result<(), ServerError> {
        let mut flags = first_flags;
        for _ in 0..MAX_BATCH {
            let Some(mut frames) = receive(self.socket, flags)? else {
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
            let handled = match body.as_slice() {
                [] => self.handle(b""),
                [frame] => self.handle(frame),
                parts => Err(ProtocolError::Multipart { parts: parts.len() }.into()),
            };
            match handled {
                Ok(Handled::Staged(answer)) => self.waiting.push(Pending {
                    envelope: frames,
                    answer,
                }),
                // The board is sent from the store's cache, never copied.
                Ok(Handled::Reply(Now::Board)) => {
                    send_reply(self.socket, frames, self.store.encoded());
                }
                Ok(Handled::Reply(Now::Bytes(bytes))) => send_reply(self.socket, frames, &bytes),
                Err(err) => reject(self.socket, frames, &err),
            }
        }
        Ok(())
    }

    /// Parses one request; answers it now or stages its change.
    fn handle(&mut self, frame: &[u8]) -> Result<Handled, Rejected> {
        let request = protocol::parse_request(frame, &self.config.limits)?;
        let (name, status, answer) = match request {
            Request::Poll => return Ok(Handled::Reply(Now::Board)),
            Request::Snapshot => {
                let snapshot = self.live.snapshot(self.store);
                return Ok(Handled::Reply(Now::Bytes(snapshot)));
            }
            Request::Since { epoch, seq } => {
                if epoch == self.live.epoch && seq == self.store.seq() {
                    let unchanged = format!("{}{seq}", protocol::UNCHANGED_PREFIX);
                    return Ok(Handled::Reply(Now::Bytes(unchanged.into_bytes())));
                }
                let snapshot = self.live.snapshot(self.store);
                return Ok(Handled::Reply(Now::Bytes(snapshot)));
            }
            Request::Update { name, status } => (name, Some(status), Answer::Board),
            Request::Clear { name } => (name, None, Answer::Snapshot),
        };
        let staged = match status {
            Some(status) => self.store.stage(name, status),
            None => self.store.stage_clear(name).map_err(UpdateError::from),
        };
        match staged {
            Ok(()) => {}
            Err(UpdateError::Board(err)) => return Err(err.into()),
            Err(UpdateError::Storage(err)) => {
                eprintln!("error: {}", crate::error_chain(&err));
                return Err(Rejected::Unstored);
            }
        }
        if !self.config.quiet {
            // Errors writing our own log (a closed stdout) must not stop the service.
            let _ = match status {
                Some(status) => writeln!(
                    std::io::stdout(),
                    "received name: '{name}' status: '{status}'"
                ),
                None => writeln!(std::io::stdout(), "cleared name: '{name}'"),
            };
        }
        Ok(Handled::Staged(answer))
    }

    /// Writes the staged changes: answers them now, or queues them for their sync.
    fn commit(&mut self) {
        if !self.store.has_staged() {
            return;
        }
        match self.store.commit() {
            Ok(Committed::Applied) => self.answer_waiting(),
            Ok(Committed::Syncing) => self.syncing.push_back(std::mem::take(&mut self.waiting)),
            Ok(Committed::Deferred) => {}
            Err(err) => {
                let mut batch = std::mem::take(&mut self.waiting);
                self.unstored(&mut batch, &err);
            }
        }
    }

    /// Answers the batches that finished syncs made durable, oldest first.
    fn finish_syncs(&mut self) {
        match self.store.finish_syncs() {
            Ok(done) => {
                let done = done.min(self.syncing.len());
                for mut batch in self.syncing.drain(..done).collect::<Vec<_>>() {
                    self.answer(&mut batch);
                }
            }
            Err(err) => {
                for mut batch in self.syncing.drain(..).collect::<Vec<_>>() {
                    self.unstored(&mut batch, &err);
                }
            }
        }
    }

    fn answer_waiting(&mut self) {
        let mut batch = std::mem::take(&mut self.waiting);
        self.answer(&mut batch);
    }

    /// Answers a batch whose changes could not be stored.
    fn unstored(&mut self, batch: &mut Vec<Pending>, err: &StorageError) {
        eprintln!("error: {}", crate::error_chain(err));
        for pending in batch.iter_mut() {
            pending.answer = Answer::Rejected(Rejected::Unstored);
        }
        self.answer(batch);
    }

    /// Answers every request of a batch, emptying it.
    fn answer(&mut self, batch: &mut Vec<Pending>) {
        // Built at most once per batch: every clear in it gets the same board.
        let mut snapshot = None;
        for pending in batch.drain(..) {
            match &pending.answer {
                Answer::Board => send_reply(self.socket, pending.envelope, self.store.encoded()),
                Answer::Snapshot => {
                    let reply = snapshot.get_or_insert_with(|| self.live.snapshot(self.store));
                    send_reply(self.socket, pending.envelope, reply);
                }
                Answer::Rejected(err) => reject(self.socket, pending.envelope, err),
            }
        }
    }

    /// Publishes what changed since the last round.
    fn publish(&mut self) {
        self.live.publish(self.store);
    }
}

/// What became of a request.
enum Handled {
    /// Answer now with this.
    Reply(Now),
    /// Staged; answer with this once it is durable.
    Staged(Answer),
}

/// A reply sent at once.
enum Now {
    /// The plain board (borrowed from the store when sent).
    Board,
    /// Anything else.
    Bytes(Vec<u8>),
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
