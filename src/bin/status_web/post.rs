//! `POST /status`: a status from the web, posted as the browser's user.
//!
//! The gateway has no rights of its own. With a server that wants logins
//! (`--auth`), the browser's HTTP Basic credentials become that user's
//! ZeroMQ PLAIN login, on a connection of its own, so the server's rules
//! (only alice sets alice) hold for the web as for the terminal.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use status_board::client::Login;
use status_board::client::request::{Client, RequestError};
use status_board::protocol::{self, ERROR_PREFIX, POLL_REQUEST};
use status_board::shutdown::Shutdown;
use tokio::sync::Semaphore;

use crate::form::{PostForm, update_request};
use crate::http::Shared;

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
    endpoint: String,
    timeout: Duration,
    shutdown: Shutdown,
    turns: Semaphore,
}

impl Poster {
    pub(super) fn new(endpoint: &str, timeout: Duration, shutdown: Shutdown) -> Poster {
        Poster {
            context: zmq::Context::new(),
            endpoint: endpoint.to_owned(),
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
        let mut client =
            Client::in_context(self.context.clone(), &self.endpoint, self.timeout, 1, None);
        match client.request(POLL_REQUEST.as_bytes(), &self.shutdown) {
            Ok(_) => Some(false),
            Err(RequestError::LoginWanted { .. }) => Some(true),
            Err(_) => None,
        }
    }

    /// Blocks until the server answers `request`, or every try is out.
    fn send(&self, request: &str, login: Option<Login>) -> Result<Vec<u8>, RequestError> {
        let mut client = Client::in_context(
            self.context.clone(),
            &self.endpoint,
            self.timeout,
            TRIES,
            login,
        );
        client.request(request.as_bytes(), &self.shutdown)
    }
}

/// An answer to a post: a status code and one line, or the board.
fn answer(code: StatusCode, text: String) -> Response {
    let mut response = (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response();
    if code == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"status-board\", charset=\"UTF-8\""),
        );
    }
    response
}

fn refuse(code: StatusCode, why: impl std::fmt::Display) -> Response {
    answer(code, format!("{ERROR_PREFIX}{why}\n"))
}

/// The header the page sends with its posts: it asks for its own login
/// fields, so a refusal must not raise the browser's login dialog (a modal
/// on a wall screen).
const FROM_THE_PAGE: &str = "x-status-board";

pub(super) async fn status(
    State(shared): State<Shared>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let from_the_page = headers.contains_key(FROM_THE_PAGE);
    let form = tokio::time::timeout(FORM_TIMEOUT, Form::from_request(request, &())).await;
    let mut response = match form {
        Ok(form) => post(shared, &headers, form).await,
        Err(_) => refuse(
            StatusCode::REQUEST_TIMEOUT,
            format_args!(
                "the form did not arrive within {} s",
                FORM_TIMEOUT.as_secs()
            ),
        ),
    };
    if from_the_page {
        response.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    response
}

async fn post(
    shared: Shared,
    headers: &HeaderMap,
    form: Result<Form<PostForm>, FormRejection>,
) -> Response {
    if let Some(refusal) = cross_site(headers) {
        return refusal;
    }
    let form = match form {
        Ok(Form(form)) => form,
        // Too large (413), or not a form (400, 415).
        Err(rejection) => {
            return refuse(
                rejection.status(),
                "send a form (application/x-www-form-urlencoded) of at most 16 KiB: \
                 status=TEXT, and name=NAME unless you log in",
            );
        }
    };
    let login = match basic_login(headers) {
        Ok(login) => login,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    let user = match &login {
        Some(Login::Plain { user, .. }) => Some(user.as_str()),
        _ => None,
    };
    let request = match update_request(form, user) {
        Ok(request) => request,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    let poster = shared.poster;
    // Never closed: an error cannot come.
    let Ok(turn) = poster.turns.acquire().await else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "the gateway is stopping");
    };
    let sending = Arc::clone(&poster);
    let logged_in = login.is_some();
    let sent = tokio::task::spawn_blocking(move || sending.send(&request, login)).await;
    drop(turn);
    if let Ok(sent) = &sent {
        shared.gateway.logins(logins_shown_by(logged_in, sent));
    }
    match sent {
        Ok(Ok(reply)) => server_answer(&reply),
        Ok(Err(e)) => client_error(&e),
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "the post was lost"),
    }
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
fn server_answer(reply: &[u8]) -> Response {
    let Ok(text) = protocol::as_text(reply) else {
        return refuse(StatusCode::BAD_GATEWAY, "the server's reply is not UTF-8");
    };
    let Some(message) = text.strip_prefix(ERROR_PREFIX) else {
        return answer(StatusCode::OK, text.to_owned());
    };
    // The refusals of rights (docs/PROTOCOL.md): who you are may not do that.
    let forbidden = message.starts_with("anonymous clients may only read")
        || (message.starts_with("user '") && message.contains("' may not "));
    let code = match forbidden {
        true => StatusCode::FORBIDDEN,
        false => StatusCode::BAD_REQUEST,
    };
    answer(code, format!("{text}\n"))
}

/// Why a post got no answer from the server, with the code that says so.
fn client_error(e: &RequestError) -> Response {
    let why = status_board::error_chain(e);
    let (code, why) = match e {
        // The client's own wording names its options; the web's is a form.
        RequestError::LoginWanted { .. } => (
            StatusCode::UNAUTHORIZED,
            "the status server wants a login: your user name and password".to_owned(),
        ),
        RequestError::LoginRefused { .. } => (StatusCode::UNAUTHORIZED, why),
        RequestError::LoginUnwanted { .. } => (
            StatusCode::BAD_REQUEST,
            "the status server takes no login: post without one".to_owned(),
        ),
        RequestError::NoReply { .. }
        | RequestError::NothingListens { .. }
        | RequestError::Interrupted => (StatusCode::SERVICE_UNAVAILABLE, why),
        RequestError::NotZeroMq { .. }
        | RequestError::Publisher { .. }
        | RequestError::Connect { .. }
        | RequestError::Socket { .. } => (StatusCode::BAD_GATEWAY, why),
    };
    refuse(code, why)
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
fn cross_site(headers: &HeaderMap) -> Option<Response> {
    let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or("?");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let ours = origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host);
    match ours {
        true => None,
        false => Some(refuse(
            StatusCode::FORBIDDEN,
            format_args!("a post from another site ({origin}) is refused"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

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
        assert!(cross_site(&ours).is_none());
        assert!(
            cross_site(&headers(&[(header::HOST, "b:1")])).is_none(),
            "curl"
        );
        let theirs = headers(&[
            (header::HOST, "board.example:8080"),
            (header::ORIGIN, "https://evil.example"),
        ]);
        let refused = cross_site(&theirs).expect("refused");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn refusals_of_rights_are_forbidden_the_rest_bad_requests() {
        let code = |reply: &str| server_answer(reply.as_bytes()).status();
        assert_eq!(code("- a: b\n"), StatusCode::OK);
        assert_eq!(
            code("error: user 'bob' may not set 'alice'"),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            code("error: anonymous clients may only read"),
            StatusCode::FORBIDDEN
        );
        assert_eq!(code("error: status too long"), StatusCode::BAD_REQUEST);
    }
}
