//! What the server is told on the command line, and the sockets it binds.

use std::path::PathBuf;
use std::time::Duration;

use crate::protocol::{self, Limits};
use crate::shutdown::Shutdown;
use crate::storage::{self, StorageOptions};
use crate::store::Store;

use super::{ServerError, socket_error};

pub use crate::board::DEFAULT_MAX_ENTRIES;

/// LINGER for the server socket: time to flush the last replies at shutdown, never a hang.
const LINGER_MS: i32 = 200;

/// Bytes past `max_request` that are still read, so a slightly long request
/// gets a clear error reply. Anything larger is refused by libzmq itself
/// (ZMQ_MAXMSGSIZE), which drops the connection without buffering the message.
const OVERSIZE_GRACE: usize = 64 * 1024;

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

    /// The line the server prints once it listens; the original's for `PORT HOST`.
    pub fn waiting_line(&self, bound: &str) -> String {
        match self {
            Listen::PortHost { host, .. } => {
                let port = bound.rsplit(':').next().unwrap_or(bound);
                format!("Waiting for clients on port '{port}' on host '{host}'.")
            }
            Listen::Endpoints(_) => format!("Waiting for clients on '{bound}'."),
        }
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

impl Config {
    /// A server in memory on `endpoints`, with every other setting at its default.
    pub fn in_memory(endpoints: Vec<String>) -> Config {
        Config {
            listen: Listen::Endpoints(endpoints),
            state: StateConfig::InMemory,
            limits: Limits::default(),
            max_entries: DEFAULT_MAX_ENTRIES,
            quiet: true,
            publish: Vec::new(),
            ttl: None,
        }
    }

    /// `--ttl` in milliseconds.
    pub(super) fn ttl_ms(&self) -> Option<u64> {
        self.ttl
            .map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Creates the server socket with its limits and binds it to every endpoint.
///
/// Returns the socket and the endpoints as bound (a `*` or `0` port resolved).
pub(super) fn bind_server_socket(
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
        .set_rcvtimeo(Shutdown::CHECK_EVERY_MS)
        .map_err(socket_error("set RCVTIMEO"))?;
    let hard_limit = limits.max_request.saturating_add(OVERSIZE_GRACE);
    socket
        .set_maxmsgsize(i64::try_from(hard_limit).unwrap_or(i64::MAX))
        .map_err(socket_error("set MAXMSGSIZE"))?;
    let bound = bind_all(&socket, endpoints)?;
    Ok((socket, bound))
}

/// Binds `socket` to every endpoint; returns them as bound (a `*` or `0` port resolved).
pub(super) fn bind_all(
    socket: &zmq::Socket,
    endpoints: &[String],
) -> Result<Vec<String>, ServerError> {
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

/// The store the config asks for, and a line saying where it is.
///
/// Warnings (a torn record dropped, a repair) go to stderr at once.
pub(super) fn open_store(config: &Config) -> Result<(Store, String), ServerError> {
    match &config.state {
        StateConfig::InMemory => Ok((
            Store::in_memory(config.max_entries),
            "State: in memory only (--in-memory); the board is lost when the server stops.".into(),
        )),
        StateConfig::File { path, options } => {
            let path = match path {
                Some(path) => path.clone(),
                None => {
                    let endpoints = config.listen.endpoints();
                    storage::default_path(endpoints.first().map_or("", String::as_str))?
                }
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
