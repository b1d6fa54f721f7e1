//! The gateway's main thread. It is a watcher of the server like `status_client _` (the same
//! [`Follower`]: pushed changes, else `_:@since` polls, else the original's
//! `_:`), on the main thread. Beside it, on a thread of its own, a small
//! tokio runtime serves HTTP with axum: the page, the board as JSON, the
//! changes as Server-Sent Events, and posts. However many browsers watch,
//! the server sees one subscriber. `docs/WEB.md` is the long form.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use status_board::client::follow::{FollowError, Follower, Step};
use status_board::client::link::Link;
use status_board::client::request::{Client, RequestError};
use status_board::client::{Endpoints, eprintln_visible};
use status_board::shutdown::Shutdown;
use status_board::visible::visible;

use crate::app::AppState;
use crate::error::WebError;
use crate::gateway::{Gateway, Reach};
use crate::hosts::Hosts;
use crate::post::Poster;
use crate::{connections, http};

/// The default address the gateway listens on.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// How long the gateway waits after a failure of its watcher before it starts again.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// How long before the server is asked again whether it wants logins, when it did not answer.
const ASK_LOGINS_AGAIN: Duration = Duration::from_secs(5);

/// What `status_web` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where posts go, and the board is read from unless `read_endpoints`
    /// says otherwise: the first, then the next when one does not answer.
    pub endpoints: Endpoints,
    /// Where the board is read from, if not `endpoints`: servers'
    /// `--anonymous` endpoints when they want logins.
    pub read_endpoints: Option<Endpoints>,
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

/// Serves the board over HTTP until `shutdown` is triggered.
pub fn run(options: &Options, shutdown: &Shutdown) -> Result<(), WebError> {
    // Each viewer is a descriptor: the usual soft limit of 1 024 is not a
    // status board's, when the hard limit allows more.
    let open_files = status_board::sys::raise_open_file_limit();
    let gateway = Arc::new(Gateway::default());
    let poster = Arc::new(Poster::new(
        options.endpoints.clone(),
        options.timeout,
        shutdown.clone(),
    ));
    let state = AppState {
        gateway: Arc::clone(&gateway),
        poster: Arc::clone(&poster),
        hosts: Arc::new(options.hosts.clone()),
    };
    let (http, address) =
        http::Http::start(options.listen, state, connections::cap(open_files.as_ref()))?;
    let read_from = options
        .read_endpoints
        .as_ref()
        .unwrap_or(&options.endpoints);
    println!(
        "status_web: serving http://{address}/ for the board at {}",
        visible(&read_from.to_string())
    );
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
    let (new_run, asked) = mpsc::channel();
    let asker = ask_logins(asked, poster, Arc::clone(&gateway))?;
    let watched = watch(options, read_from, &gateway, &new_run, shutdown);
    drop(new_run);
    let _ = asker.join();
    drop(http);
    println!("status_web: stopped");
    watched
}

/// Follows the board into the gateway until `shutdown`; a failure is said
/// and the watch starts again, but for a login the server refuses.
fn watch(
    options: &Options,
    endpoints: &Endpoints,
    gateway: &Gateway,
    new_run: &Sender<()>,
    shutdown: &Shutdown,
) -> Result<(), WebError> {
    // Where the last watch was, when it started again: it stays with the
    // endpoint that answered.
    let mut endpoints = endpoints.clone();
    loop {
        // The gateway reads with no login of its own (an open server, or an
        // --anonymous endpoint); it has no rights to lend.
        let client = Client::new(endpoints.clone(), options.timeout, options.retries, None);
        let link = Link::new(client, "status_web");
        let mut follower = Follower::new(link, options.interval);
        match follow(&mut follower, gateway, new_run, shutdown) {
            Ok(()) => return Ok(()),
            Err(FollowError::Request(
                e @ (RequestError::LoginWanted { .. }
                | RequestError::LoginRefused { .. }
                | RequestError::LoginUnwanted { .. }
                | RequestError::Connect { .. }),
            )) => return Err(FollowError::Request(e).into()),
            Err(e) => {
                // It may quote the server (a reply that is not a board).
                eprintln_visible(format_args!(
                    "status_web: watching the board failed: {}; starting again",
                    status_board::error_chain(&e)
                ));
                gateway.reach(Reach::Stale {
                    since_ms: follower.link().last_contact_ms(),
                });
                endpoints = follower.link().client.endpoints().clone();
                if !shutdown.sleep(RESTART_AFTER) {
                    return Ok(());
                }
            }
        }
    }
}

fn follow(
    follower: &mut Follower,
    gateway: &Gateway,
    new_run: &Sender<()>,
    shutdown: &Shutdown,
) -> Result<(), FollowError> {
    // The server run whose logins were asked about: its --auth cannot
    // change without a restart, which is a new run.
    let mut asked_of: Option<String> = None;
    while let Some(step) = follower.next(shutdown)? {
        let mirror = follower.mirror();
        if mirror.has_board() && asked_of.as_deref() != Some(mirror.epoch.as_str()) {
            asked_of = Some(mirror.epoch.clone());
            let _ = new_run.send(());
        }
        match step {
            Step::Changed(change) => gateway.change(&change, follower.mirror()),
            Step::Board { changed: true } => gateway.board(follower.mirror()),
            Step::Board { changed: false } | Step::Idle | Step::Away => {}
        }
        let reach = match (follower.is_out_of_touch(), follower.mirror().has_board()) {
            // Never heard: no board to call stale.
            (_, false) => Reach::Connecting,
            (true, true) => Reach::Stale {
                since_ms: follower.link().last_contact_ms(),
            },
            (false, true) => Reach::Live(follower.how()),
        };
        gateway.reach(reach);
        gateway.cluster_stale(follower.mirror().stale_since_ms);
    }
    Ok(())
}

/// Asks the server, on a thread of its own, whether it wants logins for
/// posts, each time `new_run` says a server run began (and again while it
/// does not answer), and tells the gateway: the page shows its login fields
/// from the start when it does. A request that carries no login is the
/// question: the posts' endpoint is what matters, which may not be the one
/// the board is read from (`--read-endpoint`), and the server's answer
/// follows it through restarts with and without `--auth`. The thread ends
/// when `new_run`'s sender is dropped.
fn ask_logins(
    new_run: Receiver<()>,
    poster: Arc<Poster>,
    gateway: Arc<Gateway>,
) -> Result<JoinHandle<()>, WebError> {
    let body = move || {
        let mut unanswered = false;
        loop {
            let woken = match unanswered {
                true => new_run.recv_timeout(ASK_LOGINS_AGAIN),
                false => new_run.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            if woken == Err(RecvTimeoutError::Disconnected) {
                return;
            }
            // Several runs told at once need one answer.
            while new_run.try_recv().is_ok() {}
            let wanted = poster.logins_wanted();
            unanswered = wanted.is_none();
            gateway.logins(wanted);
        }
    };
    thread::Builder::new()
        .name("logins".into())
        .spawn(body)
        .map_err(WebError::Runtime)
}
