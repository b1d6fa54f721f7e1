//! The server: open the state, bind the sockets, then answer every request
//! with the board. This file wires the parts together and reloads the users
//! file on SIGHUP.
//!
//! - `config`: what the command line says, and binding the sockets.
//! - `serve`: the serve loop, which stores each batch of updates with one
//!   write before answering it, expires old statuses and publishes changes.
//! - `socket`: the request socket's I/O (envelopes, replies, waiting).
//! - `cmd`: one handler per request kind, testable without a socket.
//! - `console`: the start-up text and every console line's format.
//! - `error`: why the server stops, and why a request changed nothing.
//! - `publisher`: every change pushed to watchers (`--publish`).
//! - `auth`: logins (`--auth`): the users file, the ZAP handler, rights.
//! - `connections`: keeps client connections below the open-file limit.

pub mod auth;
mod cmd;
mod config;
mod connections;
mod console;
mod error;
mod publisher;
mod serve;
mod socket;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::shutdown::Shutdown;

pub use config::{Config, DEFAULT_MAX_ENTRIES, Listen, StateConfig};
pub use error::ServerError;

use crate::store::Store;
use auth::{SharedUsers, Users, ZapHandler};
use cmd::RunInfo;
use config::{Access, bind_server_socket, open_store};
use connections::ConnectionGuard;
use console::log_err;
use publisher::Publisher;
use serve::Serving;
use socket::RequestSocket;

/// Longest a stop then waits for the state to be forced to disk: a disk that
/// does not answer ends the stop with what may not be on disk, and exit 1.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

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
        console::set_detailed(config.log_time);
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

    /// Answers requests until `shutdown` is raised, then forces the state to disk.
    pub fn serve(mut self, shutdown: &Shutdown) -> Result<(), ServerError> {
        let served = self.serve_loop(shutdown);
        // Flush whatever happens to the loop: every acknowledged update goes to disk.
        let closed = self.store.close(CLOSE_GRACE);
        served?;
        closed?;
        console::stopped(&self.config.state, self.store.len());
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
        let run = RunInfo {
            // A gateway's epoch is its cluster's and prefix's: a watcher may
            // move between the gateways of one board and keep its numbers.
            epoch: self
                .store
                .cluster_epoch()
                .map_or_else(new_epoch, str::to_owned),
            ttl_ms,
            publish: self
                .publisher
                .as_ref()
                .map(|p| p.endpoints.clone())
                .unwrap_or_default(),
        };
        let mut serving = Serving {
            socket: RequestSocket::new(&self.socket, raw_socket),
            store: &mut self.store,
            config: &self.config,
            run,
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
    console::announce(&server);
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
