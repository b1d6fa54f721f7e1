//! The ZAP handler (ZeroMQ RFC 27): libzmq asks it, on a REP socket at
//! `inproc://zeromq.zap.01` in the server's context, whether each new
//! connection may log in, and with which user id.
//!
//! It runs on a thread of its own, so that a flood of bad logins (each costs
//! an argon2 verification) costs that thread and nothing else: requests from
//! connections already logged in keep flowing through the serve loop.

use crate::server::log::log_err;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::shutdown::Shutdown;

use super::SharedUsers;
use crate::server::side_thread::SideThread;
use crate::server::{ServerError, socket_error};

/// The ZAP domain of the endpoints that need a login.
pub(crate) const LOGIN_DOMAIN: &str = "status-board";

/// The ZAP domain of the `--anonymous` endpoints: no login, read only.
pub(crate) const ANONYMOUS_DOMAIN: &str = "status-board-anonymous";

/// Where libzmq looks for the handler, by RFC 27.
const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";

/// The handler's thread; stopped and joined on drop, before the context ends.
pub(crate) struct ZapHandler {
    _thread: SideThread,
}

impl ZapHandler {
    /// Binds the handler in `context` and starts answering. Call before any
    /// socket that needs it is bound.
    pub(crate) fn start(context: &zmq::Context, users: SharedUsers) -> Result<Self, ServerError> {
        let socket = context
            .socket(zmq::REP)
            .map_err(socket_error("create the ZAP socket"))?;
        socket
            .set_linger(0)
            .map_err(socket_error("set LINGER on the ZAP socket"))?;
        socket
            .bind(ZAP_ENDPOINT)
            .map_err(socket_error("bind the ZAP handler"))?;
        SideThread::spawn("zap", move |stop| serve(&socket, &users, stop))
            .map(|thread| ZapHandler { _thread: thread })
    }
}

/// Answers ZAP requests until `stop`; a broken socket ends it (and with it
/// every login: libzmq then refuses them, which fails closed).
fn serve(socket: &zmq::Socket, users: &SharedUsers, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match socket.poll(zmq::POLLIN, Shutdown::CHECK_EVERY_MS.into()) {
            Ok(0) | Err(zmq::Error::EINTR) => continue,
            Ok(_) => {}
            Err(err) => {
                log_err!("error: the ZAP handler stopped: {err}; no login is accepted");
                return;
            }
        }
        let Ok(request) = socket.recv_multipart(zmq::DONTWAIT) else {
            continue;
        };
        let reply = answer(&request, &users.current());
        if let Err(err) = socket.send_multipart(reply, 0) {
            log_err!("warning: the ZAP handler could not answer: {err}");
        }
    }
}

/// The reply to one ZAP request: version, request id, status code, status
/// text, user id, metadata.
fn answer(request: &[Vec<u8>], users: &super::Users) -> Vec<Vec<u8>> {
    let reply = |id: &[u8], code: &str, text: &str, user: &str| {
        vec![
            b"1.0".to_vec(),
            id.to_vec(),
            code.as_bytes().to_vec(),
            text.as_bytes().to_vec(),
            user.as_bytes().to_vec(),
            Vec::new(),
        ]
    };
    let [
        version,
        id,
        domain,
        address,
        _routing_id,
        mechanism,
        credentials @ ..,
    ] = request
    else {
        log_err!(
            "warning: a malformed ZAP request ({} frames)",
            request.len()
        );
        let id = request.get(1).map_or(&[][..], Vec::as_slice);
        return reply(id, "500", "malformed ZAP request", "");
    };
    if version.as_slice() != b"1.0" {
        return reply(id, "500", "unknown ZAP version", "");
    }
    let address = String::from_utf8_lossy(address);
    match (domain.as_slice(), mechanism.as_slice(), credentials) {
        (d, b"NULL", []) if d == ANONYMOUS_DOMAIN.as_bytes() => reply(id, "200", "OK", ""),
        (d, b"PLAIN", [user, password]) if d == LOGIN_DOMAIN.as_bytes() => {
            let user = String::from_utf8_lossy(user);
            let password = String::from_utf8_lossy(password);
            if users.check_password(&user, &password) {
                reply(id, "200", "OK", &user)
            } else {
                log_err!("refused the login of '{user}' from {address}: wrong user or password");
                reply(id, "400", "wrong user or password", "")
            }
        }
        (d, b"CURVE", [key]) if d == LOGIN_DOMAIN.as_bytes() => match users.user_with_key(key) {
            Some(user) => reply(id, "200", "OK", user),
            None => {
                log_err!("refused a CURVE login from {address}: unknown key");
                reply(id, "400", "unknown key", "")
            }
        },
        (_, mechanism, _) => {
            let mechanism = String::from_utf8_lossy(mechanism);
            log_err!("refused a {mechanism} login from {address}: not allowed on that endpoint");
            reply(id, "400", "mechanism not allowed here", "")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::server::auth::{Users, hash_password};

    fn request(domain: &str, mechanism: &str, credentials: &[&str]) -> Vec<Vec<u8>> {
        let mut frames: Vec<Vec<u8>> = ["1.0", "7", domain, "127.0.0.1", "", mechanism]
            .iter()
            .map(|f| f.as_bytes().to_vec())
            .collect();
        frames.extend(credentials.iter().map(|c| c.as_bytes().to_vec()));
        frames
    }

    /// (status code, user id) of the reply.
    fn outcome(reply: &[Vec<u8>]) -> (String, String) {
        let text = |i: usize| String::from_utf8_lossy(&reply[i]).into_owned();
        assert_eq!((text(0), text(1)), ("1.0".into(), "7".into()));
        (text(2), text(4))
    }

    #[test]
    fn logins_are_checked_per_domain_and_mechanism() {
        let hash = hash_password("secret").expect("hash");
        let users = Users::parse(Path::new("users"), &format!("alice:{hash}\n")).expect("users");
        let ok = |user: &str| ("200".to_owned(), user.to_owned());
        let refused = || ("400".to_owned(), String::new());
        let cases = [
            (
                request(LOGIN_DOMAIN, "PLAIN", &["alice", "secret"]),
                ok("alice"),
            ),
            (
                request(LOGIN_DOMAIN, "PLAIN", &["alice", "wrong"]),
                refused(),
            ),
            (
                request(LOGIN_DOMAIN, "PLAIN", &["mallory", "secret"]),
                refused(),
            ),
            (request(LOGIN_DOMAIN, "NULL", &[]), refused()),
            (request(ANONYMOUS_DOMAIN, "NULL", &[]), ok("")),
            (
                request(ANONYMOUS_DOMAIN, "PLAIN", &["alice", "secret"]),
                refused(),
            ),
            (
                request(LOGIN_DOMAIN, "CURVE", &["0123456789abcdef0123456789abcdef"]),
                refused(),
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(outcome(&answer(&request, &users)), expected, "{request:?}");
        }
        let short = answer(&request(LOGIN_DOMAIN, "PLAIN", &[])[..3], &users);
        assert_eq!(short[2], b"500");
    }
}
