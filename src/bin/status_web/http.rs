//! The HTTP side: axum on a two-thread tokio runtime, on a thread of its own.
//!
//! - `GET /`: the page (HTML, CSS and JS in one document, in the binary).
//! - `GET /events`: Server-Sent Events: the board, then each change, and a
//!   heartbeat every second.
//! - `GET /board.json`: the board as `status_client _ --json` prints it.
//! - `POST /status`: a status, posted with the browser's login (`post.rs`).

use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{broadcast, oneshot};

use crate::gateway::Gateway;
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
    /// Serves on `listener` from a thread of its own.
    pub(super) fn start(
        listener: TcpListener,
        gateway: Arc<Gateway>,
        poster: Poster,
    ) -> Result<Http, WebError> {
        listener.set_nonblocking(true).map_err(WebError::Runtime)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("http")
            .enable_all()
            .build()
            .map_err(WebError::Runtime)?;
        let shared = Shared {
            gateway,
            poster: Arc::new(poster),
        };
        let (stop, stopped) = oneshot::channel();
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(WebError::Runtime)?
        };
        let thread = spawn("http", move || {
            runtime.block_on(serve(listener, shared, stopped));
            // Event streams never end by themselves: do not wait for them.
            runtime.shutdown_timeout(Duration::from_millis(100));
        })?;
        Ok(Http {
            stop: Some(stop),
            thread: Some(thread),
        })
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

async fn serve(listener: tokio::net::TcpListener, shared: Shared, stopped: oneshot::Receiver<()>) {
    let gateway = Arc::clone(&shared.gateway);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            every.tick().await;
            gateway.heartbeat();
        }
    });
    let app = Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route("/board.json", get(board_json))
        .route("/status", post(post::status))
        .layer(DefaultBodyLimit::max(MAX_FORM))
        .with_state(shared);
    let server = axum::serve(listener, app);
    tokio::select! {
        result = server => {
            if let Err(e) = result {
                eprintln!("status_web: the HTTP server stopped: {e}");
            }
        }
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
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        shared.gateway.board_json(),
    )
        .into_response()
}

/// The board, then every event as it comes. A viewer that falls more than
/// the backlog behind gets a fresh board in place of what it missed.
async fn events(State(shared): State<Shared>) -> Response {
    let (first, receiver) = shared.gateway.subscribe();
    let gateway = shared.gateway;
    let stream = futures_util::stream::unfold(
        (Some(first), receiver, gateway),
        |(first, mut receiver, gateway)| async move {
            if let Some(first) = first {
                return Some((Ok::<Bytes, Infallible>(first), (None, receiver, gateway)));
            }
            match receiver.recv().await {
                Ok(event) => Some((Ok(event), (None, receiver, gateway))),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let (board, receiver) = gateway.subscribe();
                    Some((Ok(board), (None, receiver, gateway)))
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

/// Runs `body` on a named thread; joined by the caller.
fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, WebError> {
    thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .map_err(WebError::Runtime)
}
