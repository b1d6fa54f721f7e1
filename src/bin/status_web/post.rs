//! `POST /status`: a status from the web, posted as the browser's user.
//!
//! The gateway has no rights of its own. With a server that wants logins
//! (`--auth`), the browser's HTTP Basic credentials become that user's
//! ZeroMQ PLAIN login, on a connection of its own, so the server's rules
//! (only alice sets alice) hold for the web as for the terminal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequest, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use status_board::client::request::{Client, RequestError};
use status_board::client::{Endpoints, Login};
use status_board::protocol::{self, ERROR_PREFIX, POLL_REQUEST};
use status_board::shutdown::Shutdown;
use tokio::sync::Semaphore;

use crate::error::Refusal;
use crate::form::{PostForm, update_request};
use crate::gateway::Gateway;

/// Tries per post: a post waits at most this many timeouts, then says the server is away.
const TRIES: u32 = 2;

/// Posts sent to the server at once; the rest wait their turn. Each holds a
/// thread and two or three descriptors (its socket and connection) out of
/// the reserve the connections' cap leaves (`connections.rs`).
const POSTS_AT_ONCE: usize = 16;

/// From the end of a post's head to the end of its form: a form is at most
/// 16 KiB, and a peer that sends it a byte at a time is not waited for.
const FORM_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends posts to the server, each on a connection of its own.
pub(super) struct Poster {
    context: zmq::Context,
    /// The servers, and the one that answered last: the next post starts there.
    endpoints: Mutex<Endpoints>,
    timeout: Duration,
    shutdown: Shutdown,
    turns: Semaphore,
}

impl Poster {
    pub(super) fn new(
        endpoints: impl Into<Endpoints>,
        timeout: Duration,
        shutdown: Shutdown,
    ) -> Poster {
        Poster {
            context: zmq::Context::new(),
            endpoints: Mutex::new(endpoints.into()),
            timeout,
            shutdown,
            turns: Semaphore::new(POSTS_AT_ONCE),
        }
    }

    /// Whether the server wants a login for posts, asked with a request
    /// that has none (`_:`, which any server answers): a server with
    /// `--auth` refuses it in the handshake, where the security mechanisms
    /// differ, before any password is looked at; an open one answers with
    /// the board. `None` if it does not answer.
    pub(super) fn logins_wanted(&self) -> Option<bool> {
        let mut client = self.client(1, None);
        let answered = client.request(POLL_REQUEST.as_bytes(), &self.shutdown);
        self.remember(&client);
        match answered {
            Ok(_) => Some(false),
            Err(RequestError::LoginWanted { .. }) => Some(true),
            Err(_) => None,
        }
    }

    /// Blocks until the server answers `request`, or every try is out.
    fn send(&self, request: &str, login: Option<Login>) -> Result<Vec<u8>, RequestError> {
        let mut client = self.client(TRIES, login);
        let answered = client.request(request.as_bytes(), &self.shutdown);
        self.remember(&client);
        answered
    }

    /// A client of its own for one request, starting at the endpoint that
    /// answered last.
    fn client(&self, tries: u32, login: Option<Login>) -> Client {
        let endpoints = self.lock_endpoints().clone();
        Client::in_context(self.context.clone(), endpoints, self.timeout, tries, login)
            .speaking_as("status_web")
    }

    /// Where `client` ended up: where the next request starts.
    fn remember(&self, client: &Client) {
        *self.lock_endpoints() = client.endpoints().clone();
    }

    fn lock_endpoints(&self) -> std::sync::MutexGuard<'_, Endpoints> {
        // A panic elsewhere while holding it leaves a list that is still a list.
        self.endpoints
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The header the page sends with its posts: it asks for its own login
/// fields, so a refusal must not raise the browser's login dialog (a modal
/// on a wall screen).
const FROM_THE_PAGE: &str = "x-status-board";

pub(super) async fn status(
    State(poster): State<Arc<Poster>>,
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let from_the_page = headers.contains_key(FROM_THE_PAGE);
    let form = tokio::time::timeout(FORM_TIMEOUT, Form::from_request(request, &())).await;
    let posted = match form {
        Ok(form) => post(&poster, &gateway, &headers, form).await,
        Err(_) => Err(Refusal::FormTimeout(FORM_TIMEOUT.as_secs())),
    };
    let mut response = posted.into_response();
    if from_the_page {
        response.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    response
}

/// Posts the form as the browser's user: the board the server answers
/// with, or why not.
async fn post(
    poster: &Arc<Poster>,
    gateway: &Gateway,
    headers: &HeaderMap,
    form: Result<Form<PostForm>, FormRejection>,
) -> Result<String, Refusal> {
    cross_site(headers)?;
    // Too large (413), or not a form (400, 415).
    let Form(form) = form.map_err(|rejection| Refusal::NotAForm(rejection.status()))?;
    let login = basic_login(headers).map_err(|why| Refusal::BadPost(why.to_owned()))?;
    let user = match &login {
        Some(Login::Plain { user, .. }) => Some(user.as_str()),
        _ => None,
    };
    let request = update_request(form, user).map_err(Refusal::BadPost)?;
    // Never closed: an error cannot come.
    let turn = poster
        .turns
        .acquire()
        .await
        .map_err(|_| Refusal::Stopping)?;
    let sending = Arc::clone(poster);
    let logged_in = login.is_some();
    let sent = tokio::task::spawn_blocking(move || sending.send(&request, login)).await;
    drop(turn);
    let sent = sent.map_err(|_| Refusal::Lost)?;
    gateway.logins(logins_shown_by(logged_in, &sent));
    server_answer(&sent.map_err(Refusal::Request)?)
}

/// What a post's outcome says of whether the server wants logins: the
/// handshake took the login given, or none; or it wanted one, or none.
fn logins_shown_by(logged_in: bool, sent: &Result<Vec<u8>, RequestError>) -> Option<bool> {
    match sent {
        Ok(_) => Some(logged_in),
        Err(RequestError::LoginWanted { .. } | RequestError::LoginRefused { .. }) => Some(true),
        Err(RequestError::LoginUnwanted { .. }) => Some(false),
        Err(_) => None,
    }
}

/// The server's reply: the board (200), or its `error: …` as it said it.
fn server_answer(reply: &[u8]) -> Result<String, Refusal> {
    let text = protocol::as_text(reply).map_err(|_| Refusal::ReplyNotUtf8)?;
    let Some(message) = text.strip_prefix(ERROR_PREFIX) else {
        return Ok(text.to_owned());
    };
    // The refusal's word (docs/PROTOCOL.md), never its English.
    Err(Refusal::Server {
        message: message.to_owned(),
        kind: protocol::Refusal::parse(message).0,
    })
}

/// `Authorization: Basic …` as a PLAIN login; none without the header.
fn basic_login(headers: &HeaderMap) -> Result<Option<Login>, &'static str> {
    headers
        .get(header::AUTHORIZATION)
        .map(|value| crate::form::basic_login(value.as_bytes()))
        .transpose()
}

/// A post a page of another site makes the browser send (with the
/// credentials it keeps for us) is refused: its `Origin` is not our host.
fn cross_site(headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("?");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let ours = origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host);
    match ours {
        true => Ok(()),
        false => Err(Refusal::CrossSite {
            origin: origin.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, StatusCode};

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn basic_credentials_become_a_plain_login() {
        // "alice:s3cret:with colon"
        let h = headers(&[(
            header::AUTHORIZATION,
            "Basic YWxpY2U6czNjcmV0OndpdGggY29sb24=",
        )]);
        assert_eq!(
            basic_login(&h),
            Ok(Some(Login::Plain {
                user: "alice".into(),
                password: "s3cret:with colon".into()
            }))
        );
        assert_eq!(basic_login(&HeaderMap::new()), Ok(None));
        for bad in ["Bearer abc", "Basic !!!", "Basic YWxpY2U=", "Basic OnB3"] {
            let h = headers(&[(header::AUTHORIZATION, bad)]);
            assert!(basic_login(&h).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_post_from_another_origin_is_refused() {
        let ours = headers(&[
            (header::HOST, "board.example:8080"),
            (header::ORIGIN, "https://board.example:8080"),
        ]);
        assert!(cross_site(&ours).is_ok());
        assert!(
            cross_site(&headers(&[(header::HOST, "b:1")])).is_ok(),
            "curl"
        );
        let theirs = headers(&[
            (header::HOST, "board.example:8080"),
            (header::ORIGIN, "https://evil.example"),
        ]);
        let refused = cross_site(&theirs).expect_err("refused");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn a_refusals_word_gives_its_code_and_no_word_is_a_bad_request() {
        let code = |reply: &str| match server_answer(reply.as_bytes()) {
            Ok(_) => StatusCode::OK,
            Err(refusal) => refusal.status(),
        };
        assert_eq!(code("- a: b\n"), StatusCode::OK);
        for (reply, status) in [
            (
                "error: forbidden: user 'bob' may not set 'alice'",
                StatusCode::FORBIDDEN,
            ),
            (
                "error: forbidden: anonymous clients may only read",
                StatusCode::FORBIDDEN,
            ),
            (
                "error: too-long: request is 90 bytes",
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            ("error: full: board is full (2 names)", StatusCode::CONFLICT),
            (
                "error: unavailable: try again later",
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                "error: invalid: request has no ':'",
                StatusCode::BAD_REQUEST,
            ),
            // The English alone decides nothing: an older server's refusal.
            (
                "error: user 'bob' may not set 'alice'",
                StatusCode::BAD_REQUEST,
            ),
        ] {
            assert_eq!(code(reply), status, "{reply}");
        }
    }
}
