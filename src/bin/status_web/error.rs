//! What can go wrong, in the two places it is told: [`Refusal`], a request
//! answered with an HTTP error code (one line, `error: …`), and
//! [`WebError`], why the gateway stopped (its exit code is `main`'s).

use std::net::SocketAddr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use status_board::client::RequestError;
use status_board::client::follow::FollowError;
use status_board::protocol::{self, ERROR_PREFIX};
use status_board::visible::visible;

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
    /// Watching the board failed in a way a retry cannot mend (a login, an
    /// endpoint libzmq cannot connect to).
    #[error(transparent)]
    Watch(#[from] FollowError),
}

/// Why a request is refused: each kind with its HTTP status code
/// ([`Refusal::status`]), said in one line of text, `error: …`.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No Host header, two, or one that is not text (400).
    #[error("{0}")]
    BadHost(&'static str),
    /// A Host this gateway does not answer to (421): DNS rebinding.
    #[error(
        "this is not {}: status_web answers to {served}. If that is its name (a reverse \
         proxy's), start status_web with --allow-host NAME.",
        visible(host)
    )]
    Misdirected {
        /// The name the request gave.
        host: String,
        /// The names served, as said to the user.
        served: String,
    },
    /// The board is not known yet (503): an empty board would say nobody posted.
    #[error("no contact with the status server yet: the board is not known")]
    NoBoardYet,
    /// The form came too slowly (408).
    #[error("the form did not arrive within {0} s")]
    FormTimeout(u64),
    /// Not a form, or too large: the code axum's rejection gives (400, 413, 415).
    #[error(
        "send a form (application/x-www-form-urlencoded) of at most 16 KiB: \
         status=TEXT, and name=NAME unless you log in"
    )]
    NotAForm(StatusCode),
    /// Sent by a page of another site, with the browser's credentials (403).
    #[error("a post from another site ({origin}) is refused")]
    CrossSite {
        /// The `Origin` the browser said.
        origin: String,
    },
    /// The form or its login is not one a post can carry (400).
    #[error("{0}")]
    BadPost(String),
    /// The gateway is stopping (503).
    #[error("the gateway is stopping")]
    Stopping,
    /// The thread that sent the post was lost (500).
    #[error("the post was lost")]
    Lost,
    /// The post got no usable reply from the server (401, 400, 503, 502).
    #[error("{}", request_message(.0))]
    Request(RequestError),
    /// The server's reply is not text (502).
    #[error("the server's reply is not UTF-8")]
    ReplyNotUtf8,
    /// The server refused the update: what it said after `error: `, with
    /// the code its word says (403, 413, 409, 503, else 400).
    #[error("{message}")]
    Server {
        /// The server's words.
        message: String,
        /// The kind of refusal, from the word after `error: `; `None` from a
        /// server that sends none (the original, an older one of ours).
        kind: Option<protocol::Refusal>,
    },
}

impl Refusal {
    /// The HTTP status code that says it.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BadHost(_) | Refusal::BadPost(_) => StatusCode::BAD_REQUEST,
            Refusal::Misdirected { .. } => StatusCode::MISDIRECTED_REQUEST,
            Refusal::NoBoardYet | Refusal::Stopping => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::FormTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Refusal::NotAForm(code) => *code,
            Refusal::CrossSite { .. } => StatusCode::FORBIDDEN,
            Refusal::Lost => StatusCode::INTERNAL_SERVER_ERROR,
            Refusal::Request(err) => request_status(err),
            Refusal::ReplyNotUtf8 => StatusCode::BAD_GATEWAY,
            Refusal::Server { kind, .. } => match kind {
                Some(protocol::Refusal::Forbidden) => StatusCode::FORBIDDEN,
                Some(protocol::Refusal::TooLong) => StatusCode::PAYLOAD_TOO_LARGE,
                Some(protocol::Refusal::Full) => StatusCode::CONFLICT,
                Some(protocol::Refusal::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
                Some(protocol::Refusal::Invalid) | None => StatusCode::BAD_REQUEST,
            },
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let code = self.status();
        let mut response = (
            code,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{ERROR_PREFIX}{self}\n"),
        )
            .into_response();
        let headers = response.headers_mut();
        match self {
            // A peer that misnames us has no use for the connection.
            Refusal::BadHost(_) | Refusal::Misdirected { .. } => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            // Not a board to keep: the next look may have one.
            Refusal::NoBoardYet => {
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            _ if code == StatusCode::UNAUTHORIZED => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"status-board\", charset=\"UTF-8\""),
                );
            }
            _ => {}
        }
        response
    }
}

/// The HTTP status code of a post the server did not answer usably.
fn request_status(err: &RequestError) -> StatusCode {
    match err {
        RequestError::LoginWanted { .. } | RequestError::LoginRefused { .. } => {
            StatusCode::UNAUTHORIZED
        }
        RequestError::LoginUnwanted { .. } => StatusCode::BAD_REQUEST,
        RequestError::NoReply { .. }
        | RequestError::NothingListens { .. }
        | RequestError::Interrupted => StatusCode::SERVICE_UNAVAILABLE,
        RequestError::NotZeroMq { .. }
        | RequestError::Publisher { .. }
        | RequestError::Connect { .. }
        | RequestError::Socket { .. } => StatusCode::BAD_GATEWAY,
    }
}

/// What a browser is told of a post the server did not answer usably.
fn request_message(err: &RequestError) -> String {
    match err {
        // The client's own wording names its options; the web's is a form.
        RequestError::LoginWanted { .. } => {
            "the status server wants a login: your user name and password".to_owned()
        }
        RequestError::LoginUnwanted { .. } => {
            "the status server takes no login: post without one".to_owned()
        }
        other => status_board::error_chain(other),
    }
}
