//! The ZAP handler (ZeroMQ RFC 27): libzmq asks it, on a socket at
//! `inproc://zeromq.zap.01` in the server's context, whether each new
//! connection may log in, and with which user id.
//!
//! Cheap answers (an anonymous endpoint, a CURVE key, a mechanism not
//! allowed) are given at once, on the handler's thread. A password costs an
//! argon2 verification, so PLAIN logins wait in a bounded queue, fair between
//! source addresses ([`queue`]), for a small pool of lower-priority checkers
//! ([`verifiers`]): a flood of junk logins from one address costs a bounded
//! share of the cores, delays another address's login by one verification,
//! and never the requests of clients already logged in. The log says the
//! first refusals of every ten seconds and sums up the rest ([`tally`]).
//!
//! The socket is a ROUTER, not RFC 27's REP: it takes every request as it
//! comes and answers each when its verdict is in, in any order.

mod queue;
mod tally;
mod verifiers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::shutdown::Shutdown;
use crate::visible::visible_bytes;

use super::{SharedUsers, Users};
use crate::server::config::HANDSHAKE_MS;
use crate::server::error::{ServerError, socket_error};
use crate::side_thread::SideThread;
use queue::{Limits, Login, LoginQueue, Source};
use tally::Tally;
use verifiers::{VERDICTS_ENDPOINT, Waiting};

/// The ZAP domain of the endpoints that need a login.
pub(crate) const LOGIN_DOMAIN: &str = "status-board";

/// The ZAP domain of the `--anonymous` endpoints: no login, read only.
pub(crate) const ANONYMOUS_DOMAIN: &str = "status-board-anonymous";

/// Where libzmq looks for the handler, by RFC 27.
const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";

/// Logins waiting: from one source address, and in all. A legitimate address
/// has one or two at a time (a gateway's posts, an office behind NAT at nine);
/// a full queue turns its oldest away with "try again" (ZAP 300).
const QUEUE_LIMITS: Limits = Limits {
    per_source: 16,
    total: 1024,
    // libzmq closes a connection whose handshake takes longer: a login that
    // waited this long has no connection left to log in.
    max_age: Duration::from_millis(HANDSHAKE_MS as u64),
};

/// The handler's thread and the checkers'; stopped and joined on drop
/// (checkers first), before the context ends.
pub(crate) struct ZapHandler {
    _checkers: Vec<SideThread>,
    _handler: SideThread,
}

impl ZapHandler {
    /// Binds the handler in `context` and starts answering. Call before any
    /// socket that needs it is bound.
    pub(crate) fn start(context: &zmq::Context, users: SharedUsers) -> Result<Self, ServerError> {
        let requests = context
            .socket(zmq::ROUTER)
            .map_err(socket_error("create the ZAP socket"))?;
        requests
            .set_linger(0)
            .map_err(socket_error("set LINGER on the ZAP socket"))?;
        requests
            .bind(ZAP_ENDPOINT)
            .map_err(socket_error("bind the ZAP handler"))?;
        let verdicts = context
            .socket(zmq::PULL)
            .map_err(socket_error("create the ZAP verdict socket"))?;
        verdicts
            .set_linger(0)
            .map_err(socket_error("set LINGER on the ZAP verdict socket"))?;
        verdicts
            .bind(VERDICTS_ENDPOINT)
            .map_err(socket_error("bind the ZAP verdict socket"))?;
        let waiting = Waiting::new(LoginQueue::new(QUEUE_LIMITS));
        let checkers = (0..verifiers::pool_size())
            .map(|_| verifiers::start(context, Arc::clone(&waiting), users.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let handler = SideThread::spawn("zap", move |stop| {
            Handler {
                requests,
                verdicts,
                waiting,
                users,
                tally: Tally::new(Instant::now()),
            }
            .serve(stop);
        })
        .map_err(|source| ServerError::Thread {
            name: "zap",
            source,
        })?;
        Ok(ZapHandler {
            _checkers: checkers,
            _handler: handler,
        })
    }
}

/// The handler's sockets and state, on its own thread.
struct Handler {
    requests: zmq::Socket,
    verdicts: zmq::Socket,
    waiting: Arc<Waiting>,
    users: SharedUsers,
    tally: Tally,
}

impl Handler {
    /// Answers ZAP requests until `stop`; a broken socket ends it (and with
    /// it every login: libzmq then refuses them, which fails closed).
    fn serve(mut self, stop: &Shutdown) {
        while !stop.is_triggered() {
            let mut items = [
                self.requests.as_poll_item(zmq::POLLIN),
                self.verdicts.as_poll_item(zmq::POLLIN),
            ];
            match zmq::poll(&mut items, Shutdown::CHECK_EVERY_MS.into()) {
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(err) => {
                    crate::server::console::log_err!(
                        "error: the ZAP handler stopped: {err}; no login is accepted"
                    );
                    return;
                }
            }
            // Every request waiting, then every verdict: taking them all each
            // time keeps the queue's view of who is waiting current.
            while let Ok(request) = self.requests.recv_multipart(zmq::DONTWAIT) {
                self.take(&request);
            }
            while let Ok(verdict) = self.verdicts.recv_multipart(zmq::DONTWAIT) {
                self.deliver(&verdict);
            }
            let dropped = self.waiting.lock().take_dropped();
            self.tally.dropped(dropped);
            self.tally.tick(Instant::now());
        }
    }

    /// One request from libzmq: answered now, or queued for a checker.
    fn take(&mut self, request: &[Vec<u8>]) {
        let [reply_to, delimiter, body @ ..] = request else {
            return;
        };
        if !delimiter.is_empty() {
            return;
        }
        match triage(body, &self.users.current(), &mut self.tally) {
            Triage::Answer(answer) => self.send(reply_to, answer),
            Triage::Check(mut login) => {
                login.reply_to.clone_from(reply_to);
                let turned_away = self.waiting.lock().push(login);
                self.waiting.notify();
                if let Some(login) = turned_away {
                    // Its connection may be a real client's: "try again" (300).
                    // libzmq then holds the connection silent until its
                    // handshake time runs out, and the client's next try, on a
                    // fresh connection (Lazy Pirate), logs in again.
                    let answer =
                        Answer::new(&login.request_id, "300", "too many logins at once", "");
                    self.send(&login.reply_to, answer);
                }
            }
        }
    }

    /// A checker's verdict: `[reply_to, request_id, code, user, address]`.
    fn deliver(&mut self, verdict: &[Vec<u8>]) {
        let [reply_to, request_id, code, user, address] = verdict else {
            return;
        };
        let answer = match code.as_slice() {
            b"200" => Answer::new(request_id, "200", "OK", &String::from_utf8_lossy(user)),
            _ => {
                self.tally.refused(|| {
                    format!(
                        "refused the login of '{}' from {}: wrong user or password",
                        visible_bytes(user),
                        peer(address)
                    )
                });
                Answer::new(request_id, "400", "wrong user or password", "")
            }
        };
        self.send(reply_to, answer);
    }

    /// Sends `answer` to the session behind `reply_to`; a session that has
    /// gone is skipped by libzmq.
    fn send(&self, reply_to: &[u8], answer: Answer) {
        let mut frames = vec![reply_to.to_vec(), Vec::new()];
        frames.extend(answer.frames);
        if let Err(err) = self.requests.send_multipart(frames, zmq::DONTWAIT) {
            crate::server::console::log_err!("warning: the ZAP handler could not answer: {err}");
        }
    }
}

/// A ZAP reply's frames after the envelope: version, request id, status
/// code, status text, user id, metadata.
#[derive(Debug)]
struct Answer {
    frames: Vec<Vec<u8>>,
}

impl Answer {
    fn new(request_id: &[u8], code: &str, text: &str, user: &str) -> Answer {
        Answer {
            frames: vec![
                b"1.0".to_vec(),
                request_id.to_vec(),
                code.as_bytes().to_vec(),
                text.as_bytes().to_vec(),
                user.as_bytes().to_vec(),
                Vec::new(),
            ],
        }
    }

    #[cfg(test)]
    fn code(&self) -> &[u8] {
        &self.frames[2]
    }
}

/// A peer's address for the log; empty when the peer hung up before libzmq
/// asked for it.
fn peer(address: &[u8]) -> std::borrow::Cow<'_, str> {
    match address.is_empty() {
        true => "a peer that has gone".into(),
        false => visible_bytes(address),
    }
}

/// What becomes of a request: an answer now, or a password to check.
#[derive(Debug)]
enum Triage {
    Answer(Answer),
    Check(Login),
}

/// Sorts one request (version, request id, domain, address, routing id,
/// mechanism, credentials): everything but a password is answered here.
fn triage(request: &[Vec<u8>], users: &Users, tally: &mut Tally) -> Triage {
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
        crate::server::console::log_err!(
            "warning: a malformed ZAP request ({} frames)",
            request.len()
        );
        let id = request.get(1).map_or(&[][..], Vec::as_slice);
        return Triage::Answer(Answer::new(id, "500", "malformed ZAP request", ""));
    };
    if version.as_slice() != b"1.0" {
        return Triage::Answer(Answer::new(id, "500", "unknown ZAP version", ""));
    }
    let login = domain.as_slice() == LOGIN_DOMAIN.as_bytes();
    let anonymous = domain.as_slice() == ANONYMOUS_DOMAIN.as_bytes();
    let answer = match (mechanism.as_slice(), credentials) {
        (b"NULL", []) if anonymous => Answer::new(id, "200", "OK", ""),
        (b"PLAIN", [user, password]) if login => {
            let address = String::from_utf8_lossy(address).into_owned();
            return Triage::Check(Login {
                reply_to: Vec::new(),
                request_id: id.clone(),
                user: user.clone(),
                password: password.clone(),
                source: Source::of(&address),
                address,
                arrived: Instant::now(),
            });
        }
        (b"CURVE", [key]) if login => match users.user_with_key(key) {
            Some(user) => Answer::new(id, "200", "OK", user),
            None => {
                tally.refused(|| {
                    format!("refused a CURVE login from {}: unknown key", peer(address))
                });
                Answer::new(id, "400", "unknown key", "")
            }
        },
        (mechanism, _) => {
            tally.refused(|| {
                format!(
                    "refused a {} login from {}: not allowed on that endpoint",
                    visible_bytes(mechanism),
                    peer(address)
                )
            });
            Answer::new(id, "400", "mechanism not allowed here", "")
        }
    };
    Triage::Answer(answer)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::server::auth::hash_password;

    fn request(domain: &str, mechanism: &str, credentials: &[&str]) -> Vec<Vec<u8>> {
        let mut frames: Vec<Vec<u8>> = ["1.0", "7", domain, "127.0.0.1", "", mechanism]
            .iter()
            .map(|f| f.as_bytes().to_vec())
            .collect();
        frames.extend(credentials.iter().map(|c| c.as_bytes().to_vec()));
        frames
    }

    /// (status code, user id) of what the handler and a checker answer.
    fn outcome(request: &[Vec<u8>], users: &Users) -> (String, String) {
        let text = |frame: &[u8]| String::from_utf8_lossy(frame).into_owned();
        match triage(request, users, &mut Tally::new(Instant::now())) {
            Triage::Answer(answer) => {
                assert_eq!(text(&answer.frames[1]), "7", "the request id comes back");
                (text(answer.code()), text(&answer.frames[4]))
            }
            Triage::Check(login) => match verifiers::check(&login, users) {
                true => ("200".into(), text(&login.user)),
                false => ("400".into(), String::new()),
            },
        }
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
            assert_eq!(outcome(&request, &users), expected, "{request:?}");
        }
        let short = outcome(&request(LOGIN_DOMAIN, "PLAIN", &[])[..3], &users);
        assert_eq!(short.0, "500");
    }
}
