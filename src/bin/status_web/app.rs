//! The routes, in one [`app`] that needs no socket (the tests below call it
//! as axum's `examples/testing` does, with `tower::ServiceExt::oneshot`):
//!
//! - `GET /`: the page (HTML, CSS and JS in one document, in the binary).
//! - `GET /events`: Server-Sent Events: the board, then each change, and a
//!   heartbeat every second.
//! - `GET /board.json`: the board as `status_client _ --json` prints it.
//! - `POST /status`: a status, posted with the browser's login (`post.rs`).
//!
//! Every request's Host is checked first (`hosts.rs`), on every path, and
//! every response says `nosniff`. Connections are accepted and bounded
//! before (`accept.rs`, which runs this router on each).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, FromRef, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::broadcast;

use crate::connections::{Busy, Connection};
use crate::error::Refusal;
use crate::gateway::Gateway;
use crate::hosts::Hosts;
use crate::post::{self as posting, Poster};

/// The page: one document, nothing fetched from elsewhere.
const PAGE: &str = include_str!("page.html");

/// What the page may do: its own inline script and style, and talk to its origin.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The largest form taken: a status is at most a few KB.
const MAX_FORM: usize = 16 * 1024;

/// What the handlers share: the board, the posts' sender, the names served.
#[derive(Clone)]
pub(super) struct AppState {
    pub gateway: Arc<Gateway>,
    pub poster: Arc<Poster>,
    pub hosts: Arc<Hosts>,
}

impl FromRef<AppState> for Arc<Gateway> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.gateway)
    }
}

impl FromRef<AppState> for Arc<Poster> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.poster)
    }
}

impl FromRef<AppState> for Arc<Hosts> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.hosts)
    }
}

/// The whole HTTP application: the routes, the form limit, the Host check
/// and `nosniff`, on every path (a 404 and a 405 too).
pub(super) fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route("/board.json", get(board_json))
        .route("/status", post(posting::status))
        .layer(DefaultBodyLimit::max(MAX_FORM))
        .layer(middleware::from_fn_with_state(state.clone(), front))
        .with_state(state)
}

/// What every request goes through: refused unless it names a host we
/// serve, else routed; and never sniffed.
async fn front(State(hosts): State<Arc<Hosts>>, request: Request, next: Next) -> Response {
    let mut response = match hosts.refusal(request.uri(), request.headers()) {
        Some(refusal) => refusal.into_response(),
        None => next.run(request).await,
    };
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
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

async fn board_json(State(gateway): State<Arc<Gateway>>) -> Result<Response, Refusal> {
    let board = gateway.board_json().ok_or(Refusal::NoBoardYet)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        board,
    )
        .into_response())
}

/// The board, then every event as it comes. A viewer that falls more than
/// the backlog behind gets a fresh board in place of what it missed.
async fn events(
    State(gateway): State<Arc<Gateway>>,
    connection: Option<Extension<Connection>>,
) -> Response {
    let (first, receiver) = gateway.subscribe();
    // The stream keeps its connection busy: never closed to make room.
    let viewer = Viewer {
        gateway,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::{Method, StatusCode};
    use status_board::shutdown::Shutdown;
    use tower::ServiceExt;

    use super::*;

    /// The application over a gateway that has heard nothing yet, and a
    /// poster to a port where nothing listens (no test here posts).
    fn app_for_tests(allowed: &[&str]) -> Router {
        let names: Vec<String> = allowed.iter().map(|&name| name.to_owned()).collect();
        app(AppState {
            gateway: Arc::new(Gateway::default()),
            poster: Arc::new(Poster::new(
                "tcp://127.0.0.1:9",
                Duration::from_millis(100),
                Shutdown::new(),
            )),
            hosts: Arc::new(Hosts::new(&names).expect("names")),
        })
    }

    /// Sends `method path` naming `host` through the application, as a
    /// connection would, without one; the response and its body.
    async fn send(app: Router, method: Method, path: &str, host: &str) -> (Response, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host)
            .body(Body::empty())
            .expect("a request");
        let response = app.oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.expect("a body");
        let body = String::from_utf8(body.to_vec()).expect("text");
        (Response::from_parts(parts, Body::empty()), body)
    }

    fn nosniff(response: &Response) -> bool {
        response.headers().get(header::X_CONTENT_TYPE_OPTIONS)
            == Some(&HeaderValue::from_static("nosniff"))
    }

    #[tokio::test]
    async fn a_host_not_served_is_misdirected_on_every_path_and_closed() {
        for path in ["/", "/board.json", "/events", "/nowhere"] {
            let (response, body) =
                send(app_for_tests(&[]), Method::GET, path, "evil.example").await;
            assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST, "{path}");
            assert!(nosniff(&response), "{path}");
            assert_eq!(
                response.headers().get(header::CONNECTION),
                Some(&HeaderValue::from_static("close")),
                "{path}"
            );
            assert!(
                body.starts_with("error: this is not evil.example: status_web answers to"),
                "{body}"
            );
        }
        let allowed = app_for_tests(&["board.example"]);
        let (response, _) = send(allowed, Method::GET, "/", "board.example:8080").await;
        assert_eq!(response.status(), StatusCode::OK, "an --allow-host name");
    }

    #[tokio::test]
    async fn a_missing_path_and_a_wrong_method_say_nosniff_too() {
        let (response, _) = send(app_for_tests(&[]), Method::GET, "/nowhere", "localhost").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(nosniff(&response));
        let (response, _) = send(
            app_for_tests(&[]),
            Method::PUT,
            "/board.json",
            "127.0.0.1:8080",
        )
        .await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(nosniff(&response));
    }

    #[tokio::test]
    async fn the_board_before_contact_is_unavailable_not_empty() {
        let (response, body) =
            send(app_for_tests(&[]), Method::GET, "/board.json", "localhost").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            "error: no contact with the status server yet: the board is not known\n"
        );
        assert_eq!(
            response.headers().get(header::CACHE_CONTROL),
            Some(&HeaderValue::from_static("no-store"))
        );
        assert!(nosniff(&response));
    }

    #[tokio::test]
    async fn the_page_keeps_its_policy() {
        let (response, body) = send(app_for_tests(&[]), Method::GET, "/", "[::1]:8080").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers().get(header::CONTENT_SECURITY_POLICY),
            Some(&HeaderValue::from_static(PAGE_POLICY))
        );
        assert_eq!(body, PAGE);
    }
}
