//! The gateway's main thread. It is a watcher of the server like `status_client _` (the same
//! [`Follower`]: pushed changes, else `_:@since` polls, else the original's
//! `_:`), on the main thread. Beside it, on a thread of its own, a small
//! tokio runtime serves HTTP with axum: the page, the board as JSON, the
//! changes as Server-Sent Events, and posts. However many browsers watch,
//! the server sees one subscriber. `docs/WEB.md` is the long form.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use status_board::client::RunError;
use status_board::client::follow::{Follower, Step};
use status_board::client::link::Link;
use status_board::client::request::{Client, ClientError};
use status_board::shutdown::Shutdown;

use crate::gateway::{Gateway, Reach};
use crate::hosts::Hosts;
use crate::{connections, http, post};

/// The default address the gateway listens on.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// How long the gateway waits after a failure of its watcher before it starts again.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// What `status_web` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where posts go, and the board is read from unless `read_endpoint` says otherwise.
    pub endpoint: String,
    /// Where the board is read from, if not `endpoint`: a server's
    /// `--anonymous` endpoint when it wants logins.
    pub read_endpoint: Option<String>,
    /// The HTTP address.
    pub listen: SocketAddr,
    /// Time between polls of a server that does not publish.
    pub interval: Duration,
    /// Wait for one reply.
    pub timeout: Duration,
    /// Tries per request.
    pub retries: u32,
    /// The names served, besides IP addresses and `localhost`.
    pub hosts: Hosts,
}

/// Why the gateway stopped.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The HTTP address could not be bound.
    #[error("cannot listen on {address}")]
    Listen {
        /// Where.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP side could not start.
    #[error("cannot start the HTTP server")]
    Runtime(#[source] std::io::Error),
    /// Watching the board failed in a way a retry cannot mend (a login).
    #[error(transparent)]
    Watch(#[from] RunError),
}

/// Serves the board over HTTP until `shutdown` is triggered.
pub fn run(options: &Options, shutdown: &Shutdown) -> Result<(), WebError> {
    // Each viewer is a descriptor: the usual soft limit of 1 024 is not a
    // status board's, when the hard limit allows more.
    let open_files = status_board::sys::raise_open_file_limit();
    let gateway = Arc::new(Gateway::default());
    let poster = post::Poster::new(&options.endpoint, options.timeout, shutdown.clone());
    let (http, address) = http::Http::start(
        options.listen,
        Arc::clone(&gateway),
        poster,
        options.hosts.clone(),
        connections::cap(open_files.as_ref()),
    )?;
    let read_from = options
        .read_endpoint
        .as_deref()
        .unwrap_or(&options.endpoint);
    println!("status_web: serving http://{address}/ for the board at {read_from}");
    println!(
        "status_web: {}",
        connections::describe_cap(open_files.as_ref())
    );
    if !address.ip().is_loopback() {
        eprintln!(
            "status_web: warning: {address} is not loopback: HTTP Basic credentials and \
             statuses cross the network in clear; put an HTTPS reverse proxy in front of it"
        );
    }
    let watched = watch(options, read_from, &gateway, shutdown);
    drop(http);
    println!("status_web: stopped");
    watched
}

/// Follows the board into the gateway until `shutdown`; a failure is said
/// and the watch starts again, but for a login the server refuses.
fn watch(
    options: &Options,
    endpoint: &str,
    gateway: &Gateway,
    shutdown: &Shutdown,
) -> Result<(), WebError> {
    loop {
        // The gateway reads with no login of its own (an open server, or an
        // --anonymous endpoint); it has no rights to lend.
        let client = Client::new(endpoint, options.timeout, options.retries, None);
        let link = Link::new(client, "status_web", endpoint, options.timeout);
        let mut follower = Follower::new(link, options.interval);
        match follow(&mut follower, gateway, shutdown) {
            Ok(()) => return Ok(()),
            Err(RunError::Client(
                e @ (ClientError::LoginWanted { .. }
                | ClientError::LoginRefused { .. }
                | ClientError::LoginUnwanted { .. }
                | ClientError::Connect { .. }),
            )) => return Err(RunError::Client(e).into()),
            Err(e) => {
                eprintln!(
                    "status_web: watching the board failed: {}; starting again",
                    status_board::error_chain(&e)
                );
                gateway.reach(Reach::Stale {
                    since_ms: follower.link().last_contact_ms(),
                });
                if !shutdown.sleep(RESTART_AFTER) {
                    return Ok(());
                }
            }
        }
    }
}

fn follow(follower: &mut Follower, gateway: &Gateway, shutdown: &Shutdown) -> Result<(), RunError> {
    while let Some(step) = follower.next(shutdown)? {
        match step {
            Step::Changed(change) => gateway.change(&change, follower.mirror()),
            Step::Board { changed: true } => gateway.board(follower.mirror()),
            Step::Board { changed: false } | Step::Idle | Step::Away => {}
        }
        let reach = match (follower.is_out_of_touch(), follower.mirror().has_board()) {
            (true, _) => Reach::Stale {
                since_ms: follower.link().last_contact_ms(),
            },
            (false, true) => Reach::Live(follower.how()),
            (false, false) => Reach::Connecting,
        };
        gateway.reach(reach);
    }
    Ok(())
}
