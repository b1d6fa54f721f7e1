//! A client of an etcd cluster through its v3 JSON gateway: ranges,
//! transactions and watches, moving to the next member when one does not
//! answer, within a deadline the caller gives.
//!
//! - `http`: one kept-alive HTTP/1.1 connection, with deadlines; `chunks`:
//!   chunked answers; `transport` and `tls`: TCP, or TLS (`etcd-tls`).
//! - `api`: the JSON of requests and answers.
//!
//! It knows keys and values only, never the board (`store/cluster/` maps
//! one to the other).

mod api;
mod chunks;
mod http;
mod tls;
mod transport;

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::Value;

pub(crate) use api::{Compare, Header, KeyValue, Op, WatchAnswer, WatchEvent};
pub(crate) use http::Url;
pub use tls::TlsFiles;
pub(crate) use tls::{Tls, load as load_tls};

use http::{Connection, HttpError, Stream};

/// Longest one member gets to answer one call before the next is tried: a
/// paused or cut-off member must not use up the caller's whole deadline.
const PER_TRY: Duration = Duration::from_millis(700);

/// What a try that ran out of time says.
const TIMED_OUT: &str = "no answer in time";

/// Longest a connection attempt waits.
const CONNECT: Duration = Duration::from_millis(300);

/// Why a call to etcd did not succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EtcdError {
    /// No member answered in time, or every one that did said it cannot
    /// serve now (no leader, no quorum): the cluster is unavailable.
    #[error("no etcd member could serve it ({last})")]
    Unavailable {
        /// What the last member tried said.
        last: String,
    },
    /// etcd refused the request itself (trying elsewhere would not help).
    #[error("etcd refused: {0}")]
    Refused(String),
    /// The revision asked for was compacted away.
    #[error("etcd compacted the revisions asked for ({0})")]
    Compacted(String),
    /// etcd's answer could not be read.
    #[error("etcd sent an answer we cannot read: {0}")]
    Malformed(String),
}

/// etcd's user and password (`--etcd-credentials`, or the environment).
#[derive(Clone)]
pub struct Credentials {
    /// The etcd user.
    pub user: String,
    /// Its password.
    pub password: String,
}

impl Credentials {
    /// `USER:PASSWORD` on the first line of a file only its owner may read.
    pub fn from_file(path: &std::path::Path) -> Result<Credentials, String> {
        let text = crate::secret_file::read_private(path, "the etcd credentials file")
            .map_err(|e| crate::error_chain(&e))?;
        let line = text.lines().next().unwrap_or("");
        match line.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => Ok(Credentials {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err(format!(
                "{}: the first line must be USER:PASSWORD (etcd's user)",
                path.display()
            )),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, not even in a debug print.
        write!(f, "Credentials {{ user: {:?} }}", self.user)
    }
}

/// A client of one cluster, holding one connection to its current member.
#[derive(Debug)]
pub(crate) struct Etcd {
    urls: Vec<Url>,
    /// The member tried first.
    current: usize,
    connection: Option<Connection>,
    credentials: Option<Credentials>,
    token: Option<String>,
    tls: Option<Tls>,
}

/// What one try at one member came to.
enum Try<T> {
    Done(T),
    /// Worth trying at the next member (or again, if the deadline allows).
    Elsewhere(String),
    /// The token expired: log in again and retry.
    Login,
    Fatal(EtcdError),
}

impl Etcd {
    pub(crate) fn new(urls: Vec<Url>, credentials: Option<Credentials>, tls: Option<Tls>) -> Etcd {
        Etcd {
            urls,
            current: 0,
            connection: None,
            credentials,
            token: None,
            tls,
        }
    }

    /// A connection to the current member.
    fn connect(&self) -> Result<Connection, HttpError> {
        Connection::open(&self.urls[self.current], self.tls.as_ref(), CONNECT)
    }

    /// The member in use, for messages.
    pub(crate) fn member(&self) -> &str {
        self.urls
            .get(self.current)
            .map_or("(none)", |url| url.text.as_str())
    }

    /// Moves to the next member, dropping the connection.
    pub(crate) fn rotate(&mut self) {
        self.connection = None;
        self.current = (self.current + 1) % self.urls.len().max(1);
    }

    /// POSTs `body` to `path`, trying the members in turn until `deadline`.
    fn call<T: DeserializeOwned>(
        &mut self,
        path: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<T, EtcdError> {
        let body = body.to_string();
        let mut last = String::from("no member tried");
        let mut logins = 0;
        let mut tried = 0;
        while Instant::now() < deadline {
            match self.try_once(path, body.as_bytes(), deadline) {
                Try::Done(answer) => return Ok(answer),
                Try::Fatal(err) => return Err(err),
                Try::Login if logins < 2 => {
                    logins += 1;
                    self.token = None;
                }
                Try::Login => return Err(EtcdError::Refused("authentication failed".into())),
                Try::Elsewhere(why) => {
                    // A refusal says more than the time-out that may follow it.
                    if tried == 0 || why != TIMED_OUT {
                        last = format!("{}: {why}", self.member());
                    }
                    tried += 1;
                    self.rotate();
                }
            }
        }
        Err(EtcdError::Unavailable { last })
    }

    fn try_once<T: DeserializeOwned>(
        &mut self,
        path: &str,
        body: &[u8],
        deadline: Instant,
    ) -> Try<T> {
        let try_deadline = deadline.min(Instant::now() + PER_TRY);
        if let Err(why) = self.log_in(try_deadline) {
            return why;
        }
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => match self.connect() {
                Ok(connection) => connection,
                Err(err) => return Try::Elsewhere(err.to_string()),
            },
        };
        let mut connection = connection;
        let answer = connection.post(path, body, self.token.as_deref(), try_deadline);
        match answer {
            Ok(answer) => {
                self.connection = Some(connection);
                match serde_json::from_slice(&answer.body) {
                    Ok(value) => Try::Done(value),
                    Err(err) => Try::Fatal(EtcdError::Malformed(err.to_string())),
                }
            }
            Err(HttpError::Status { status, body }) => {
                // The connection stays usable after an error answer.
                self.connection = Some(connection);
                classify(status, &body)
            }
            // A certificate that does not check out, either way: trying
            // again, or elsewhere, will not change it.
            Err(HttpError::Io(err)) if err.kind() == std::io::ErrorKind::InvalidData => {
                Try::Fatal(EtcdError::Refused(format!("TLS: {err}")))
            }
            // The connection is dropped: a late answer must not be read as
            // the next call's.
            Err(err) => Try::Elsewhere(err.to_string()),
        }
    }

    /// Gets a token if the cluster wants logins and there is none yet.
    fn log_in<T>(&mut self, deadline: Instant) -> Result<(), Try<T>> {
        let Some(credentials) = &self.credentials else {
            return Ok(());
        };
        if self.token.is_some() {
            return Ok(());
        }
        let body = serde_json::json!({"name": credentials.user, "password": credentials.password})
            .to_string();
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => self
                .connect()
                .map_err(|err| Try::Elsewhere(err.to_string()))?,
        };
        match connection.post("/v3/auth/authenticate", body.as_bytes(), None, deadline) {
            Ok(answer) => {
                self.connection = Some(connection);
                let answer: api::AuthAnswer = serde_json::from_slice(&answer.body)
                    .map_err(|err| Try::Fatal(EtcdError::Malformed(err.to_string())))?;
                self.token = Some(answer.token);
                Ok(())
            }
            Err(HttpError::Status { status, body }) => {
                self.connection = Some(connection);
                match classify::<()>(status, &body) {
                    Try::Elsewhere(why) => Err(Try::Elsewhere(why)),
                    _ => Err(Try::Fatal(EtcdError::Refused(format!(
                        "etcd login as {:?}: {}",
                        credentials.user,
                        error_text(&body)
                    )))),
                }
            }
            Err(err) => Err(Try::Elsewhere(err.to_string())),
        }
    }

    /// Every key under `prefix`, oldest first, as a majority has it.
    pub(crate) fn range_prefix(
        &mut self,
        prefix: &[u8],
        deadline: Instant,
    ) -> Result<(Header, Vec<KeyValue>), EtcdError> {
        let answer: api::RangeAnswer =
            self.call("/v3/kv/range", &api::range_prefix(prefix, false), deadline)?;
        Ok((answer.header, answer.kvs))
    }

    /// The cluster's header as a majority has it: a cheap check of quorum.
    pub(crate) fn check(&mut self, prefix: &[u8], deadline: Instant) -> Result<Header, EtcdError> {
        let answer: api::RangeAnswer =
            self.call("/v3/kv/range", &api::range_prefix(prefix, true), deadline)?;
        Ok(answer.header)
    }

    /// Whether a majority has a key under `prefix` written after revision
    /// `after` (deletes not counted; 0 or 1): a watch that is current has
    /// shown it.
    pub(crate) fn count_written_after(
        &mut self,
        prefix: &[u8],
        after: i64,
        deadline: Instant,
    ) -> Result<i64, EtcdError> {
        let body = api::count_written_after(prefix, after);
        let answer: api::RangeAnswer = self.call("/v3/kv/range", &body, deadline)?;
        Ok(i64::try_from(answer.kvs.len()).unwrap_or(i64::MAX))
    }

    /// Runs a transaction; returns its header and whether its comparisons held.
    pub(crate) fn txn(
        &mut self,
        compare: &[Compare],
        ops: &[Op],
        deadline: Instant,
    ) -> Result<(Header, bool), EtcdError> {
        let answer: api::TxnAnswer = self.call("/v3/kv/txn", &api::txn(compare, ops), deadline)?;
        Ok((answer.header, answer.succeeded))
    }

    /// Opens a watch of every key under `prefix` from revision `start`, at
    /// the current member (the next ones if it does not answer).
    pub(crate) fn watch(
        &mut self,
        prefix: &[u8],
        start: i64,
        deadline: Instant,
    ) -> Result<Watch, EtcdError> {
        let body = api::watch_prefix(prefix, start).to_string();
        let mut last = String::from("no member tried");
        while Instant::now() < deadline {
            let try_deadline = deadline.min(Instant::now() + PER_TRY);
            if let Err(why) = self.log_in::<()>(try_deadline) {
                match why {
                    Try::Fatal(err) => return Err(err),
                    _ => {
                        last = format!("{}: cannot log in", self.member());
                        self.rotate();
                        continue;
                    }
                }
            }
            let member = self.member().to_owned();
            let opened = self.connect().and_then(|c| {
                c.stream(
                    "/v3/watch",
                    body.as_bytes(),
                    self.token.as_deref(),
                    try_deadline,
                )
            });
            match opened {
                Ok(stream) => return Ok(Watch { stream, member }),
                Err(HttpError::Status { status, body }) => match classify::<()>(status, &body) {
                    Try::Fatal(err) => return Err(err),
                    Try::Login => self.token = None,
                    _ => {
                        last = format!("{member}: {}", error_text(&body));
                        self.rotate();
                    }
                },
                Err(err) => {
                    last = format!("{member}: {err}");
                    self.rotate();
                }
            }
        }
        Err(EtcdError::Unavailable { last })
    }
}

/// What an error answer means for the next try.
fn classify<T>(status: u16, body: &str) -> Try<T> {
    let error: api::ErrorBody = serde_json::from_str(body).unwrap_or_default();
    let text = error_text(body);
    // gRPC codes: 3 invalid argument, 7 permission denied, 11 out of range
    // (compacted), 16 unauthenticated; the rest (no leader, timed out,
    // unavailable) may go better at another member.
    match error.code {
        16 => Try::Login,
        11 => Try::Fatal(EtcdError::Compacted(text)),
        3 | 5 | 6 | 7 | 8 | 9 | 12 => Try::Fatal(EtcdError::Refused(text)),
        _ if status == 401 => Try::Login,
        _ => Try::Elsewhere(text),
    }
}

/// etcd's message from an error body, made safe to print.
fn error_text(body: &str) -> String {
    let error: api::ErrorBody = serde_json::from_str(body).unwrap_or_default();
    let text = if error.message.is_empty() {
        body
    } else {
        &error.message
    };
    crate::visible::visible(&text.chars().take(200).collect::<String>()).into_owned()
}

/// An open watch: answers as they come.
#[derive(Debug)]
pub(crate) struct Watch {
    stream: Stream,
    /// The member it is open at, for messages.
    pub(crate) member: String,
}

impl Watch {
    /// The next answer; `Ok(None)` if none came by `until`.
    pub(crate) fn next(&mut self, until: Instant) -> Result<Option<WatchAnswer>, EtcdError> {
        let line = match self.stream.next_line(until) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(None),
            Err(err) => {
                return Err(EtcdError::Unavailable {
                    last: format!("{}: watch ended: {err}", self.member),
                });
            }
        };
        let line: api::WatchLine =
            serde_json::from_slice(&line).map_err(|err| EtcdError::Malformed(err.to_string()))?;
        match (line.result, line.error) {
            (Some(answer), _) => Ok(Some(answer)),
            (None, Some(error)) => Err(EtcdError::Unavailable {
                last: format!("{}: watch: {}", self.member, error_text(&error.to_string())),
            }),
            (None, None) => Err(EtcdError::Malformed("an empty watch line".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn file(text: &str, mode: u32) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("etcd-credentials");
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        (dir, path)
    }

    #[test]
    fn credentials_come_from_a_private_file_of_user_and_password() {
        let (_dir, path) = file("gw:s3cret:with:colons\nignored\n", 0o600);
        let credentials = Credentials::from_file(&path).expect("read");
        assert_eq!(credentials.user, "gw");
        assert_eq!(credentials.password, "s3cret:with:colons");
        assert!(
            !format!("{credentials:?}").contains("s3cret"),
            "never printed"
        );
        let (_dir, open) = file("gw:s3cret\n", 0o644);
        let refused = Credentials::from_file(&open).expect_err("readable by others");
        assert!(!refused.contains("s3cret"), "{refused}");
        for bad in ["gw\n", ":pw\n", "gw:\n", ""] {
            let (_dir, path) = file(bad, 0o600);
            assert!(Credentials::from_file(&path).is_err(), "{bad:?}");
        }
    }
}
