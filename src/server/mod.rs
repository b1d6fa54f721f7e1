//! The server: open the state, bind the sockets, then answer every request
//! with the board.
//!
//! - `config`: what the command line says, and binding the sockets.
//! - `publisher`: every change pushed to watchers (`--publish`).
//! - `auth`: logins (`--auth`): the users file, the ZAP handler, rights.
//! - `connections`: keeps client connections below the open-file limit.
//! - this file: the serve loop, which stores each batch of updates with one
//!   write before answering it, expires old statuses and publishes changes.

pub mod auth;
mod config;
mod connections;
pub(crate) mod log;
mod publisher;

use crate::server::log::log_err;
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::protocol::{self, ProtocolError, Refusal, Request};
use crate::shutdown::Shutdown;
use crate::storage::StorageError;
use crate::store::{BoardError, Committed, Event, Store, UpdateError, names};

pub use config::{Config, DEFAULT_MAX_ENTRIES, Listen, StateConfig};

use auth::{Caller, Forbidden, SharedUsers, Users, UsersError, ZapHandler};
use config::{Access, beyond_loopback, bind_server_socket, open_store};
use connections::ConnectionGuard;
use publisher::Publisher;

/// Longest a stop waits for updates in hand to become durable.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Longest a stop then waits for the state to be forced to disk: a disk that
/// does not answer ends the stop with what may not be on disk, and exit 1.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Most requests taken per round: bounds the wait of the first of them.
const MAX_BATCH: usize = 256;

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
    /// An endpoint's host is a name that resolves to no address.
    #[error("cannot bind {endpoint}")]
    Unresolved {
        /// The endpoint as given.
        endpoint: String,
        /// The name and what the resolver said.
        source: crate::endpoint::ResolveError,
    },
    /// The state file could not be opened, read or kept.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The users file of `--auth` cannot be used.
    #[error(transparent)]
    Users(#[from] UsersError),
    /// The CURVE key pair of `--curve-secret` cannot be used.
    #[error(transparent)]
    Curve(#[from] crate::curve::CurveError),
    /// A thread beside the serve loop could not start.
    #[error("cannot start the {name} thread")]
    Thread {
        /// The thread's name.
        name: &'static str,
        /// What the system said.
        source: std::io::Error,
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

pub(crate) fn socket_error(action: &'static str) -> impl FnOnce(zmq::Error) -> ServerError {
    move |source| ServerError::Socket { action, source }
}

/// A server with its state open and its sockets bound, not yet serving.
pub struct Server {
    config: Config,
    store: Store,
    /// Says where the state is, for the start-up lines.
    state_line: String,
    socket: zmq::Socket,
    bound: Vec<String>,
    publisher: Option<Publisher>,
    /// The users file and its table, with `--auth`.
    logins: Option<Logins>,
    /// The open-file limit, and what it was before the server raised it.
    open_files: Option<crate::sys::OpenFiles>,
    /// Keeps client connections below the open-file limit.
    _connections: ConnectionGuard,
    /// Dropped last: the sockets above and the ZAP thread end before it terminates.
    _context: zmq::Context,
}

/// What `--auth` adds to a server: its users, and the thread that checks logins.
struct Logins {
    path: PathBuf,
    users: SharedUsers,
    /// With `--curve-secret`: logins by key, encrypted.
    curve: Option<crate::curve::KeyPair>,
    _zap: ZapHandler,
}

impl Server {
    /// Reads the users file, binds every socket, then opens the state.
    ///
    /// The state last: a start that fails (an address in use, a bad endpoint)
    /// leaves no state file behind, and nothing is served before it is open.
    pub fn open(config: Config) -> Result<Server, ServerError> {
        log::set_detailed(config.log_time);
        // The users file first: a server that would let anyone in must not start.
        let users = config.auth.as_deref().map(Users::load).transpose()?;
        let curve = config
            .curve_secret
            .as_deref()
            .map(crate::curve::KeyPair::read)
            .transpose()?;
        let open_files = crate::sys::raise_open_file_limit();
        let context = zmq::Context::new();
        // The ZAP handler listens before any socket that needs it is bound.
        let logins = match (users, &config.auth) {
            (Some(users), Some(path)) => {
                let users = SharedUsers::new(users);
                let zap = ZapHandler::start(&context, users.clone())?;
                Some(Logins {
                    path: path.clone(),
                    users,
                    curve,
                    _zap: zap,
                })
            }
            _ => None,
        };
        let access = match &logins {
            Some(logins) => Access::Login(logins.curve.as_ref().map(|pair| pair.secret)),
            None => Access::Open,
        };
        let (socket, bound) = bind_server_socket(
            &context,
            &config.listen.endpoints(),
            access,
            &config.anonymous,
            &config.limits,
        )?;
        let publisher = match config.publish.is_empty() {
            true => None,
            false => Some(Publisher::bind(&context, &config.publish, access)?),
        };
        let (store, state_line) = open_store(&config)?;
        let watched: Vec<&zmq::Socket> = std::iter::once(&socket)
            .chain(publisher.as_ref().map(|p| &p.socket))
            .collect();
        let connections =
            ConnectionGuard::start(&context, &watched, open_files.as_ref().map(|l| l.limit))?;
        Ok(Server {
            config,
            store,
            state_line,
            socket,
            bound,
            publisher,
            logins,
            open_files,
            _connections: connections,
            _context: context,
        })
    }

    /// The endpoints requests are taken on, as bound (a `*` or `0` port resolved).
    pub fn endpoints(&self) -> &[String] {
        &self.bound
    }

    /// Prints where the server listens, publishes and keeps its state.
    pub fn announce(&self) {
        for endpoint in &self.bound {
            println!("{}", self.config.listen.waiting_line(endpoint));
        }
        log_err!("{}", self.state_line);
        log_err!("{}", self.config.settings_line());
        if let Some(open_files) = &self.open_files {
            log_err!("{}", config::describe_open_files(open_files));
        }
        for endpoint in self.publisher.iter().flat_map(|p| &p.endpoints) {
            log_err!("Publishing changes on '{endpoint}'.");
        }
        if let Some(logins) = &self.logins {
            let users = logins.users.current();
            log_err!(
                "Logins: {} from {}; read-only without login on: {}.",
                users.count(),
                logins.path.display(),
                match self.config.anonymous.is_empty() {
                    true => "none".to_owned(),
                    false => self.config.anonymous.join(", "),
                }
            );
            if let Some(pair) = &logins.curve {
                log_err!(
                    "CURVE: encrypted, logins by key; this server's public key is {}.",
                    pair.public_z85()
                );
                let by_password = users.password_users();
                if by_password > 0 {
                    log_err!(
                        "warning: {} a password, which CURVE cannot check: they cannot log in \
                         until they have a curve: key",
                        match by_password {
                            1 => "1 user has".to_owned(),
                            n => format!("{n} users have"),
                        }
                    );
                }
                return;
            }
            let mut exposed = beyond_loopback(&self.config.listen.endpoints())
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>();
            exposed.extend(
                beyond_loopback(&self.config.publish)
                    .into_iter()
                    .map(str::to_owned),
            );
            if !exposed.is_empty() {
                log_err!(
                    "warning: PLAIN logins send passwords in clear on {}; keep them on loopback, \
                     behind an encrypted tunnel, or use CURVE (--curve-secret)",
                    exposed.join(", ")
                );
            }
        }
    }

    /// Answers requests until `shutdown` is raised, then forces the state to disk.
    pub fn serve(mut self, shutdown: &Shutdown) -> Result<(), ServerError> {
        let served = self.serve_loop(shutdown);
        // Flush whatever happens to the loop: every acknowledged update goes to disk.
        let closed = self.store.close(CLOSE_GRACE);
        served?;
        closed?;
        let kept = match self.config.state {
            StateConfig::InMemory => "gone with the server (--in-memory: nothing on disk)",
            StateConfig::File { .. } => "all of it on disk",
        };
        log_err!("Stopped: {} on the board, {kept}.", names(self.store.len()));
        Ok(())
    }

    /// See [`Serving`]: each round takes the requests already queued, answers
    /// polls at once, stores the updates with one write and answers them once
    /// durable. At shutdown, what is in hand is finished and answered.
    fn serve_loop(&mut self, shutdown: &Shutdown) -> Result<(), ServerError> {
        // The socket lives in `self` for the whole loop.
        let raw_socket = crate::sys::RawSocket::of(&mut self.socket);
        if self.publisher.is_some() {
            self.store.record_changes();
        }
        let ttl_ms = self.config.ttl_ms();
        self.store.set_ttl(ttl_ms);
        let mut serving = Serving {
            socket: &self.socket,
            raw_socket,
            store: &mut self.store,
            config: &self.config,
            epoch: new_epoch(),
            ttl_ms,
            publisher: self.publisher.as_mut(),
            users: self.logins.as_ref().map(|l| l.users.current()),
            waiting: Vec::new(),
            syncing: VecDeque::new(),
        };
        while !shutdown.is_triggered() {
            if shutdown.take_reload() {
                serving.users = reload(self.logins.as_ref(), serving.users.take());
            }
            serving.round()?;
        }
        serving.finish()
    }
}

/// SIGHUP: reads the users file again, all or nothing. Rights change at once;
/// a changed password applies to the next login. Returns the table to use.
fn reload(logins: Option<&Logins>, before: Option<Arc<Users>>) -> Option<Arc<Users>> {
    let Some(logins) = logins else {
        log_err!("SIGHUP: nothing to reload (no --auth)");
        return before;
    };
    match logins.users.reload(&logins.path) {
        Ok(users) => {
            log_err!("reloaded {}: {}", logins.path.display(), users.count());
            Some(users)
        }
        Err(err) => {
            log_err!(
                "warning: kept the users from before: {}",
                crate::error_chain(&err)
            );
            before
        }
    }
}

/// Opens the state, binds, announces, and serves until `shutdown` is raised.
pub fn run(config: Config, shutdown: &Shutdown) -> Result<(), ServerError> {
    crate::sys::map_large_blocks();
    let server = Server::open(config)?;
    server.announce();
    server.serve(shutdown)
}

/// An identifier for this run of the server: sequence numbers restart with it,
/// so a watcher that sees a new one starts over from a snapshot.
fn new_epoch() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS's randomness; the time and pid make a
    // repeat within one boot impossible even if it were not.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(crate::clock::now_ms());
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// The serve loop's state: the socket, the board, and the requests in hand.
///
/// No request can end this loop: bad ones get an `error: ` reply and change
/// nothing. Only a broken socket does.
struct Serving<'a> {
    socket: &'a zmq::Socket,
    /// The same socket, for boards sent without a copy.
    raw_socket: crate::sys::RawSocket,
    store: &'a mut Store,
    config: &'a Config,
    /// This run's identifier, in every snapshot and published change.
    epoch: String,
    /// `--ttl` in ms, said in every snapshot.
    ttl_ms: Option<u64>,
    publisher: Option<&'a mut Publisher>,
    /// With `--auth`, the users table every write is checked against.
    users: Option<Arc<Users>>,
    /// Updates staged, not yet written.
    waiting: Vec<Pending>,
    /// Written batches waiting for their sync, oldest first; one per batch in
    /// flight in the store, some of them empty (an expiry nobody waits for).
    syncing: VecDeque<Vec<Pending>>,
}

/// A request taken from the socket, waiting for its answer.
struct Pending {
    /// The REQ envelope: the peer's identity and the routing frames, up to and
    /// including the empty delimiter. Sent back in front of the reply.
    envelope: Vec<zmq::Message>,
    /// What it gets once its change is durable.
    answer: Answer,
    /// The change, for the console line printed when it is answered (not
    /// with `--quiet`): `received` once stored, `refused` if it could not be.
    change: Option<Change>,
}

/// A change as the console shows it.
struct Change {
    name: String,
    /// The status set; `None` for a clear.
    status: Option<String>,
    /// Who, with `--auth`.
    user: Option<String>,
    /// From where (`Peer-Address`), with `--log-time`.
    peer: Option<String>,
}

impl Change {
    /// The console line, as the original prints it for a stored update.
    fn print(&self, stored: bool) {
        let line = match (&self.status, stored) {
            (Some(status), true) => format!("received name: '{}' status: '{status}'", self.name),
            (None, true) => format!("cleared name: '{}'", self.name),
            (Some(status), false) => format!(
                "refused name: '{}' status: '{status}': it could not be stored",
                self.name
            ),
            (None, false) => format!(
                "refused to clear name: '{}': it could not be stored",
                self.name
            ),
        };
        let by = self
            .user
            .as_ref()
            .map(|user| format!(" by user '{user}'"))
            .unwrap_or_default();
        let from = self
            .peer
            .as_ref()
            .map(|peer| format!(" from {peer}"))
            .unwrap_or_default();
        // Errors writing our own log (a closed stdout) must not stop the service.
        let _ = writeln!(std::io::stdout(), "{}{line}{by}{from}", log::stamp());
    }
}

/// The reply a staged request gets.
enum Answer {
    /// The plain board: a poll, or an update from any client.
    Board,
    /// The snapshot: an extension request.
    Snapshot,
    /// Refused.
    Rejected(Rejected),
}

/// What became of a request just parsed.
enum Outcome {
    /// Answer it now with this.
    ReplyNow(Immediate),
    /// Its change is staged; answer with this once it is durable.
    Staged(Answer, Option<Change>),
}

/// A reply sent at once.
enum Immediate {
    /// The plain board (borrowed from the store when sent).
    Board,
    /// Anything else.
    Bytes(Vec<u8>),
}

impl Serving<'_> {
    /// One round: take what is queued (or wait for it), expire, compact when
    /// due, write the staged changes, publish.
    fn round(&mut self) -> Result<(), ServerError> {
        if self.store.is_syncing() {
            // Wait for a request or the sync thread, whichever comes first.
            let (readable, synced) = wait(Some(self.socket), self.store)?;
            if synced {
                self.finish_syncs();
            }
            if readable {
                self.take_batch(zmq::DONTWAIT)?;
            }
        } else {
            // Only requests to wait for: a blocking receive (RCVTIMEO bounds it)
            // costs one system call fewer per round than poll, then receive.
            self.take_batch(0)?;
        }
        if let Err(err) = self.store.expire() {
            log_err!(
                "warning: cannot expire statuses: {}",
                crate::error_chain(&err)
            );
        }
        log_events(self.store);
        // Before the commit: once the batches in flight have landed, a due
        // compaction runs here, ahead of the next write (it waits for them).
        if let Err(err) = self.store.maintain() {
            log_err!("warning: {}", crate::error_chain(&err));
        }
        log_events(self.store);
        self.commit();
        self.publish();
        Ok(())
    }

    /// After a stop: finishes what is in hand. New requests are not taken any
    /// more, and a sync thread that never answers cannot hold us past the grace.
    fn finish(mut self) -> Result<(), ServerError> {
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while (self.store.is_syncing() || !self.waiting.is_empty()) && Instant::now() < deadline {
            if self.store.is_syncing() && wait(None, self.store)?.1 {
                self.finish_syncs();
            }
            self.commit();
            self.publish();
        }
        Ok(())
    }

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
                log_err!("dropped a message that has no REQ envelope");
                continue;
            };
            let mut body = frames.split_off(delimiter + 2);
            let caller = match &self.users {
                None => Caller::Open,
                // The login's user, which libzmq attaches to every frame from it.
                Some(_) => match body.last_mut().or(frames.last_mut()) {
                    Some(frame) => match frame.gets("User-Id") {
                        Some(user) if !user.is_empty() => Caller::User(user.to_owned()),
                        _ => Caller::Anonymous,
                    },
                    None => Caller::Anonymous,
                },
            };
            let peer = match log::detailed() {
                true => body
                    .last_mut()
                    .or(frames.last_mut())
                    .and_then(|frame| frame.gets("Peer-Address"))
                    .map(str::to_owned),
                false => None,
            };
            let outcome = match body.as_slice() {
                [] => self.handle(b"", &caller, peer),
                [frame] => self.handle(frame, &caller, peer),
                parts => Err(ProtocolError::Multipart { parts: parts.len() }.into()),
            };
            match outcome {
                Ok(Outcome::Staged(answer, change)) => self.waiting.push(Pending {
                    envelope: frames,
                    answer,
                    change,
                }),
                // The board is sent as it is, never copied.
                Ok(Outcome::ReplyNow(Immediate::Board)) => self.send_board(frames),
                Ok(Outcome::ReplyNow(Immediate::Bytes(bytes))) => {
                    send_reply(self.socket, frames, &bytes)
                }
                Err(err) => reject(self.socket, frames, &err),
            }
        }
        Ok(())
    }

    /// Parses one request; answers it now or stages its change.
    fn handle(
        &mut self,
        frame: &[u8],
        caller: &Caller,
        peer: Option<String>,
    ) -> Result<Outcome, Rejected> {
        let request = protocol::parse_request(frame, &self.config.limits)?;
        let (name, status, answer) = match request {
            Request::Poll => return Ok(Outcome::ReplyNow(Immediate::Board)),
            Request::Snapshot => {
                return Ok(Outcome::ReplyNow(Immediate::Bytes(self.snapshot())));
            }
            Request::Since { epoch, seq } => {
                let reply = if epoch == self.epoch && seq == self.store.seq() {
                    format!("{}{seq}", protocol::UNCHANGED_PREFIX).into_bytes()
                } else {
                    self.snapshot()
                };
                return Ok(Outcome::ReplyNow(Immediate::Bytes(reply)));
            }
            Request::Update { name, status } => (name, Some(status), Answer::Board),
            Request::Clear { name } => (name, None, Answer::Snapshot),
        };
        let verb = if status.is_some() { "set" } else { "clear" };
        caller.may_change(self.users.as_deref(), verb, name)?;
        let was_there = self.store.contains(name);
        let staged = match status {
            Some(status) => self.store.stage(name, status),
            None => self.store.stage_clear(name).map_err(UpdateError::from),
        };
        match staged {
            Ok(()) => {}
            Err(UpdateError::Board(err)) => return Err(err.into()),
            Err(UpdateError::Storage(err)) => {
                log_err!("error: {}", crate::error_chain(&err));
                return Err(Rejected::Unstored);
            }
        }
        // A clear of a name that is not there changes nothing worth a line.
        let worth_a_line = status.is_some() || was_there;
        let change = (!self.config.quiet && worth_a_line).then(|| Change {
            name: name.to_owned(),
            status: status.map(str::to_owned),
            user: match caller {
                Caller::User(user) => Some(user.clone()),
                Caller::Open | Caller::Anonymous => None,
            },
            peer,
        });
        Ok(Outcome::Staged(answer, change))
    }

    /// The snapshot reply: header, then one timed line per entry.
    fn snapshot(&mut self) -> Vec<u8> {
        let header = protocol::SnapshotHeader {
            epoch: self.epoch.clone(),
            seq: self.store.seq(),
            now_ms: self.store.now_ms(),
            publish: self
                .publisher
                .as_ref()
                .map(|p| p.endpoints.clone())
                .unwrap_or_default(),
            ttl_ms: self.ttl_ms,
        };
        // Written for this reply only: the board keeps no second copy.
        let mut out = Vec::new();
        protocol::encode_snapshot_header(&mut out, &header);
        self.store.write_timed(&mut out);
        out
    }

    /// Writes the staged changes: answers them now, or queues them for their sync.
    fn commit(&mut self) {
        if !self.store.has_staged() {
            return;
        }
        let committed = self.store.commit();
        log_events(self.store);
        match committed {
            Ok(Committed::Applied) => {
                let mut batch = std::mem::take(&mut self.waiting);
                self.answer(&mut batch);
            }
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

    /// Answers a batch whose changes could not be stored.
    fn unstored(&mut self, batch: &mut Vec<Pending>, err: &StorageError) {
        log_err!("error: {}", crate::error_chain(err));
        for pending in batch.iter_mut() {
            pending.answer = Answer::Rejected(Rejected::Unstored);
        }
        self.answer(batch);
    }

    /// Sends the board behind `envelope`, without copying it.
    fn send_board(&self, envelope: Vec<zmq::Message>) {
        let sent = send_envelope(self.socket, envelope).and_then(|to_send| match to_send {
            true => crate::sys::send_shared(self.raw_socket, self.store.shared_reply()),
            false => Ok(()),
        });
        if let Err(err) = sent {
            log_err!("could not send a reply: {err}");
        }
    }

    /// Answers every request of a batch, emptying it.
    fn answer(&mut self, batch: &mut Vec<Pending>) {
        // Built at most once per batch: every clear in it gets the same board.
        let mut snapshot = None;
        for pending in batch.drain(..) {
            if let Some(change) = &pending.change {
                change.print(!matches!(pending.answer, Answer::Rejected(_)));
            }
            match &pending.answer {
                Answer::Board => self.send_board(pending.envelope),
                Answer::Snapshot => {
                    let reply = snapshot.get_or_insert_with(|| self.snapshot());
                    send_reply(self.socket, pending.envelope, reply);
                }
                Answer::Rejected(err) => reject(self.socket, pending.envelope, err),
            }
        }
    }

    /// Publishes what changed since the last round.
    fn publish(&mut self) {
        if let Some(publisher) = self.publisher.as_deref_mut() {
            publisher.publish(&self.epoch, self.store);
        }
    }
}

/// Prints what the store did on its own.
fn log_events(store: &mut Store) {
    for event in store.take_events() {
        match event {
            Event::Expired { name, age } => log_err!(
                "expired name: '{name}': not refreshed for {}",
                humantime::format_duration(std::time::Duration::from_secs(age.as_secs()))
            ),
            Event::Reattached { path, names: count } => log_err!(
                "warning: {} was deleted or replaced while in use; wrote the board ({}) to a new file there",
                path.display(),
                names(count)
            ),
        }
    }
}

/// Waits up to [`Shutdown::CHECK_EVERY`] for a request (if `socket` is given)
/// or a finished sync; says which came, as (request, sync).
fn wait(socket: Option<&zmq::Socket>, store: &Store) -> Result<(bool, bool), ServerError> {
    let sync_fd = store.sync_fd().filter(|_| store.is_syncing());
    let mut items: Vec<zmq::PollItem> = socket
        .map(|s| s.as_poll_item(zmq::POLLIN))
        .into_iter()
        .chain(sync_fd.map(|fd| zmq::PollItem::from_fd(fd, zmq::POLLIN)))
        .collect();
    match zmq::poll(&mut items, Shutdown::CHECK_EVERY_MS.into()) {
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
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The update could not be stored; the details go to the server's log, not the client.
    #[error("the server cannot store updates right now; try again later")]
    Unstored,
}

impl Rejected {
    /// The word the error reply starts with, for programs.
    fn refusal(&self) -> Refusal {
        match self {
            Rejected::Protocol(err) => err.refusal(),
            Rejected::Board(BoardError::Full { .. }) => Refusal::Full,
            Rejected::Forbidden(_) => Refusal::Forbidden,
            Rejected::Unstored => Refusal::Unavailable,
        }
    }
}

/// Answers one request with an error, and logs it.
fn reject(socket: &zmq::Socket, envelope: Vec<zmq::Message>, err: &Rejected) {
    log_err!("rejected request: {err}");
    let reply = protocol::format_error(err.refusal(), err);
    send_reply(socket, envelope, reply.as_bytes());
}

/// Sends a reply behind its envelope; a failure concerns one client only and is logged.
fn send_reply(socket: &zmq::Socket, envelope: Vec<zmq::Message>, reply: &[u8]) {
    let sent = send_envelope(socket, envelope).and_then(|to_send| match to_send {
        true => socket.send(reply, zmq::DONTWAIT),
        false => Ok(()),
    });
    if let Err(err) = sent {
        log_err!("could not send a reply: {err}");
    }
}

/// Sends a reply's envelope, the peer's routing id first; the body follows.
/// `Ok(false)` when the reply is dropped instead, as a REP socket would: the
/// peer has gone, or it has [`REPLY_HWM`](config::REPLY_HWM) replies unread.
/// Never blocks.
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
