//! What the server is told on the command line, and the sockets it binds.

use std::path::PathBuf;
use std::time::Duration;

use crate::protocol::Limits;
use crate::shutdown::Shutdown;
use crate::storage::{self, StorageOptions};
use crate::store::Store;

use super::auth::{ANONYMOUS_DOMAIN, LOGIN_DOMAIN};
use super::console::{self, log_err};
use super::error::{ServerError, socket_error};

/// Default largest number of names on the board (`--max-entries`).
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// LINGER for the server socket: time to flush the last replies at shutdown, never a hang.
const LINGER_MS: i32 = 200;

/// Replies queued for one peer before the next is dropped. Each can hold a
/// whole board (a reply shares the board it was sent with, and an update
/// after it makes the board copy itself), so a peer that pipelines requests
/// and never reads would otherwise pin a board per request: 2 MB boards took
/// the server to 856 MiB in a second. A REQ client has one request in flight;
/// a reply dropped here is what a Lazy Pirate client already survives.
pub(super) const REPLY_HWM: i32 = 8;

/// Requests queued from one peer before libzmq stops reading its connection:
/// at most this many times `max_request` (and its grace) per peer.
pub(super) const REQUEST_HWM: i32 = 64;

/// How long a new connection has to finish its handshake (its login
/// included), after which libzmq closes it. Bounds how long a silent or
/// half-done connection holds a descriptor, and how old a login can be and
/// still be worth checking (see the ZAP handler).
pub(crate) const HANDSHAKE_MS: i32 = 10_000;

/// Connections the kernel holds for the server to accept. libzmq's 100
/// overflows in a burst (a thousand clients at nine, a flood of logins), and
/// a dropped SYN costs its client a second before it tries again.
pub(super) const LISTEN_BACKLOG: i32 = 1024;

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
    pub(crate) fn endpoints(&self) -> Vec<String> {
        match self {
            // A host name is resolved (libzmq would take it for an interface);
            // one that does not resolve is left for the bind to report
            // (`bind_all`, which says so).
            Listen::PortHost { port, host } => vec![
                crate::endpoint::resolve_tcp_endpoint(host, *port)
                    .unwrap_or_else(|_| crate::endpoint::tcp_endpoint(host, *port)),
            ],
            Listen::Endpoints(endpoints) => endpoints.clone(),
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
    /// In an etcd cluster (`--etcd`): this server is one of its gateways.
    Cluster {
        /// The members, the prefix, the login.
        cluster: crate::store::ClusterConfig,
        /// `--import STATE_FILE`: a single server's board to load first.
        import: Option<PathBuf>,
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
    /// The users file (`--auth`): every endpoint but the anonymous ones needs a login.
    pub auth: Option<PathBuf>,
    /// Endpoints that need no login and may only read (`--anonymous`; with `--auth`).
    pub anonymous: Vec<String>,
    /// The server's CURVE key pair file (`--curve-secret`): logins by key,
    /// and encryption, instead of PLAIN.
    pub curve_secret: Option<PathBuf>,
    /// Start every log line with an RFC 3339 time, and say where updates
    /// come from (`--log-time`).
    pub log_time: bool,
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
            auth: None,
            anonymous: Vec::new(),
            curve_secret: None,
            log_time: false,
        }
    }

    /// `--ttl` in milliseconds.
    pub(super) fn ttl_ms(&self) -> Option<u64> {
        self.ttl
            .map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Who may connect through the endpoints a socket binds next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Anyone, with no login: no `--auth`.
    Open,
    /// A login checked by the ZAP handler: PLAIN, or CURVE with this
    /// server secret key (encrypted, and logins by key).
    Login(Option<[u8; 32]>),
    /// No login, read only: `--anonymous` endpoints.
    Anonymous,
}

impl Access {
    /// Sets `socket`'s security for the endpoints it binds from now on (libzmq
    /// copies the options into each endpoint's listener when it binds).
    pub(super) fn apply(self, socket: &mut zmq::Socket) -> Result<(), ServerError> {
        let domain = match self {
            Access::Open => return Ok(()),
            Access::Login(Some(secret)) => {
                socket
                    .set_curve_server(true)
                    .map_err(socket_error("set CURVE_SERVER"))?;
                socket
                    .set_curve_secretkey(&secret)
                    .map_err(socket_error("set CURVE_SECRETKEY"))?;
                LOGIN_DOMAIN
            }
            Access::Login(None) => {
                socket
                    .set_plain_server(true)
                    .map_err(socket_error("set PLAIN_SERVER"))?;
                LOGIN_DOMAIN
            }
            Access::Anonymous => {
                // PLAIN_SERVER off sets the NULL mechanism, whichever was set
                // (CURVE_SERVER is not even an option where libzmq has no CURVE).
                socket
                    .set_plain_server(false)
                    .map_err(socket_error("set the NULL mechanism"))?;
                ANONYMOUS_DOMAIN
            }
        };
        socket
            .set_zap_domain(domain)
            .map_err(socket_error("set ZAP_DOMAIN"))?;
        // Without a ZAP handler, a connection is refused rather than let in.
        crate::sys::set_zap_enforce_domain(socket).map_err(socket_error("set ZAP_ENFORCE_DOMAIN"))
    }
}

/// Creates the server socket with its limits and binds it: `endpoints` with
/// `access`, then the `anonymous` ones (read only, no login).
///
/// Returns the socket and the endpoints as bound (a `*` or `0` port resolved).
pub(super) fn bind_server_socket(
    context: &zmq::Context,
    endpoints: &[String],
    access: Access,
    anonymous: &[String],
    limits: &Limits,
) -> Result<(zmq::Socket, Vec<String>), ServerError> {
    // ROUTER speaking the REP side of the envelope, so that a batch of requests
    // can be stored with one fsync and then answered together; REQ clients
    // (ours and the original) cannot tell it from a REP socket.
    let mut socket = context
        .socket(zmq::ROUTER)
        .map_err(socket_error("create a ROUTER socket"))?;
    socket
        .set_linger(LINGER_MS)
        .map_err(socket_error("set LINGER"))?;
    // Bounds the serve loop's blocking receive, so it sees a shutdown in time.
    socket
        .set_rcvtimeo(Shutdown::CHECK_EVERY_MS)
        .map_err(socket_error("set RCVTIMEO"))?;
    socket
        .set_sndhwm(REPLY_HWM)
        .map_err(socket_error("set SNDHWM"))?;
    // A reply to a full or gone peer is refused rather than silently dropped,
    // so that a peer that only looks full gets a second chance (send_envelope).
    socket
        .set_router_mandatory(true)
        .map_err(socket_error("set ROUTER_MANDATORY"))?;
    socket
        .set_rcvhwm(REQUEST_HWM)
        .map_err(socket_error("set RCVHWM"))?;
    socket
        .set_handshake_ivl(HANDSHAKE_MS)
        .map_err(socket_error("set HANDSHAKE_IVL"))?;
    socket
        .set_backlog(LISTEN_BACKLOG)
        .map_err(socket_error("set BACKLOG"))?;
    let hard_limit = limits.max_request.saturating_add(OVERSIZE_GRACE);
    socket
        .set_maxmsgsize(i64::try_from(hard_limit).unwrap_or(i64::MAX))
        .map_err(socket_error("set MAXMSGSIZE"))?;
    access.apply(&mut socket)?;
    let mut bound = bind_all(&socket, endpoints)?;
    if !anonymous.is_empty() {
        Access::Anonymous.apply(&mut socket)?;
        bound.extend(bind_all(&socket, anonymous)?);
    }
    Ok((socket, bound))
}

/// TCP endpoints among `endpoints` that others than this host can reach.
pub(super) fn beyond_loopback(endpoints: &[String]) -> Vec<&str> {
    endpoints
        .iter()
        .map(String::as_str)
        .filter(|endpoint| {
            let Some((host, _)) = crate::endpoint::split_tcp_endpoint(endpoint) else {
                return false;
            };
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            !loopback
        })
        .collect()
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
            .set_ipv6(crate::endpoint::is_ipv6_endpoint(endpoint))
            .map_err(socket_error("set IPV6"))?;
        socket.bind(endpoint).map_err(|source| {
            // libzmq binds addresses and interface names: a host name that
            // resolves to nothing reaches it as a missing interface.
            let unresolved = (source == zmq::Error::ENODEV)
                .then(|| crate::endpoint::unresolved_bind_host(endpoint))
                .flatten();
            match unresolved {
                Some(source) => ServerError::Unresolved {
                    endpoint: endpoint.clone(),
                    source,
                },
                None => ServerError::Bind {
                    endpoint: endpoint.clone(),
                    source,
                },
            }
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
            console::IN_MEMORY_LINE.to_owned(),
        )),
        StateConfig::Cluster { cluster, import } => {
            let mut store = Store::cluster(cluster, config.max_entries)?;
            if let Some(path) = import {
                let imported = store.import(path)?;
                log_err!("{}", console::imported_line(path, &imported));
            }
            let line = console::cluster_line(cluster, store.len());
            Ok((store, line))
        }
        StateConfig::File { path, options } => {
            let path = match path {
                Some(path) => path.clone(),
                None => {
                    let endpoints = config.listen.endpoints();
                    storage::prepare_default_path(endpoints.first().map_or("", String::as_str))?
                }
            };
            let (store, report) = Store::open(&path, options, config.max_entries)?;
            for warning in &report.warnings {
                log_err!("warning: {warning}");
            }
            let summary = console::state_file_line(&path, report.restored, &options.fsync);
            Ok((store, summary))
        }
    }
}

/// Descriptors kept for libzmq, the state file, the listening sockets: the
/// rest can be client connections.
pub(super) const RESERVED_FDS: u64 = 64;
