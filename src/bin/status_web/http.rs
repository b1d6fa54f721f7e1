//! The HTTP side: axum on a two-thread tokio runtime, on a thread of its own.
//!
//! - `GET /`: the page (HTML, CSS and JS in one document, in the binary).
//! - `GET /events`: Server-Sent Events: the board, then each change, and a
//!   heartbeat every second.
//! - `GET /board.json`: the board as `status_client _ --json` prints it.
//! - `POST /status`: a status, posted with the browser's login (`post.rs`).
//!
//! Connections are accepted and bounded in `accept.rs`, and every request's
//! Host checked (`hosts.rs`), before the routes see it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{broadcast, oneshot};

use crate::accept::{self, Front};
use crate::connections::{Busy, Connection, Connections};
use crate::gateway::Gateway;
use crate::hosts::Hosts;
use crate::post::{self, Poster};
use crate::run::WebError;

/// The page: one document, nothing fetched from elsewhere.
const PAGE: &str = include_str!("page.html");

/// What the page may do: its own inline script and style, and talk to its origin.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// How often every viewer gets a heartbeat: the server's clock, and a sign of life
/// for the page's watchdog.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// Threads of the runtime: a thousand viewers idle between events.
const WORKERS: usize = 2;

/// The largest form taken: a status is at most a few KB.
const MAX_FORM: usize = 16 * 1024;

/// Shared by the handlers.
#[derive(Clone)]
pub(super) struct Shared {
    pub gateway: Arc<Gateway>,
    pub poster: Arc<Poster>,
}

/// The running HTTP side; dropping it stops and joins it.
pub(super) struct Http {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Http {
    /// Listens on `address` and serves from a thread of its own, for
    /// `hosts`, with at most `connections` open at once; and says where it
    /// listens (port 0 picks one).
    pub(super) fn start(
        address: SocketAddr,
        gateway: Arc<Gateway>,
        poster: Arc<Poster>,
        hosts: Hosts,
        connections: usize,
    ) -> Result<(Http, SocketAddr), WebError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("http")
            .enable_all()
            .build()
            .map_err(WebError::Runtime)?;
        let shared = Shared { gateway, poster };
        let (stop, stopped) = oneshot::channel();
        let listen_error = |source| WebError::Listen { address, source };
        let (listener, listening) = {
            let _entered = runtime.enter();
            let listener = accept::listen(address).map_err(listen_error)?;
            let listening = listener.local_addr().map_err(listen_error)?;
            (listener, listening)
        };
        let thread = spawn("http", move || {
            runtime.block_on(serve(listener, shared, hosts, connections, stopped));
            // Event streams never end by themselves: do not wait for them.
            runtime.shutdown_timeout(Duration::from_millis(100));
        })?;
        let http = Http {
            stop: Some(stop),
            thread: Some(thread),
        };
        Ok((http, listening))
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    shared: Shared,
    hosts: Hosts,
    connections: usize,
    stopped: oneshot::Receiver<()>,
) {
    let gateway = Arc::clone(&shared.gateway);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            every.tick().await;
            gateway.heartbeat();
        }
    });
    let router = Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route("/board.json", get(board_json))
        .route("/status", post(post::status))
        .layer(DefaultBodyLimit::max(MAX_FORM))
        .with_state(shared);
    let front = Arc::new(Front { hosts, router });
    tokio::select! {
        () = accept::accept_loop(listener, front, Connections::new(connections)) => {}
        _ = stopped => {}
    }
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

async fn board_json(State(shared): State<Shared>) -> Response {
    let Some(board) = shared.gateway.board_json() else {
        // An empty board would say nobody posted: say what is true.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            "error: no contact with the status server yet: the board is not known\n",
        )
            .into_response();
    };
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        board,
    )
        .into_response()
}

/// The board, then every event as it comes. A viewer that falls more than
/// the backlog behind gets a fresh board in place of what it missed.
async fn events(
    State(shared): State<Shared>,
    connection: Option<Extension<Connection>>,
) -> Response {
    let (first, receiver) = shared.gateway.subscribe();
    // The stream keeps its connection busy: never closed to make room.
    let viewer = Viewer {
        gateway: shared.gateway,
        _busy: connection.map(|Extension(connection)| connection.busy()),
    };
    let stream = futures_util::stream::unfold(
        (Some(first), receiver, viewer),
        |(first, mut receiver, viewer)| async move {
            if let Some(first) = first {
                return Some((Ok::<Bytes, Infallible>(first), (None, receiver, viewer)));
            }
            match receiver.recv().await {
                Ok(event) => Some((Ok(event), (None, receiver, viewer))),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let (board, receiver) = viewer.gateway.subscribe();
                    Some((Ok(board), (None, receiver, viewer)))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        },
    );
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // A reverse proxy must pass each event on as it comes (nginx buffers otherwise).
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// What an event stream holds while it lasts.
struct Viewer {
    gateway: Arc<Gateway>,
    _busy: Option<Busy>,
}

/// Runs `body` on a named thread; joined by the caller.
fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, WebError> {
    thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .map_err(WebError::Runtime)
}
