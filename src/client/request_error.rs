//! What a request can fail with, as the user is told it: silence, a peer
//! that is not a status server, a login refused or wanted, or a socket error.

/// Why a request got no usable reply.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The endpoint string is not one libzmq can connect to.
    #[error("cannot connect to {endpoint}")]
    Connect {
        /// The endpoint as given.
        endpoint: String,
        /// What libzmq said.
        source: zmq::Error,
    },
    /// Every try timed out.
    #[error(
        "no reply from {endpoint} after {tries} {} of {timeout_ms} ms each; is status_server running there?",
        if *.tries == 1 { "try" } else { "tries" }
    )]
    NoReply {
        /// The endpoint asked.
        endpoint: String,
        /// Tries made.
        tries: u32,
        /// Wait per try.
        timeout_ms: u64,
    },
    /// The connection was refused: nothing listens there.
    #[error("nothing listens at {endpoint} (connection refused); is status_server running there?")]
    NothingListens {
        /// The endpoint asked.
        endpoint: String,
    },
    /// The peer does not speak ZeroMQ: its handshake failed.
    #[error(
        "{endpoint} does not speak ZeroMQ (the handshake failed); is that the status_server's port?"
    )]
    NotZeroMq {
        /// The endpoint asked.
        endpoint: String,
    },
    /// The endpoint is a status server's publisher: it speaks ZeroMQ, but
    /// only to subscribers.
    #[error(
        "{endpoint} is a status server's publisher (it only sends changes); the requests go to \
         the server's main endpoint, which it prints first: Waiting for clients on ..."
    )]
    Publisher {
        /// The endpoint asked.
        endpoint: String,
    },
    /// The server checked our login and refused it.
    #[error("{endpoint} refused the login of {who} ({why})")]
    LoginRefused {
        /// The endpoint asked.
        endpoint: String,
        /// Who we said we were: `'alice'`, or `the key …`.
        who: String,
        /// What that kind of refusal means.
        why: &'static str,
    },
    /// The endpoint needs a login, and we gave none.
    #[error(
        "{endpoint} wants a login: give --user (or STATUS_BOARD_USER) and a password \
         (STATUS_BOARD_PASSWORD, ~/.config/status-board/password, or the prompt on a terminal)"
    )]
    LoginWanted {
        /// The endpoint asked.
        endpoint: String,
    },
    /// We gave a login, and the endpoint takes none (an open server, or an
    /// `--anonymous` endpoint).
    #[error(
        "{endpoint} does not take this login (a server without --auth, a read-only \
         endpoint, or PLAIN and CURVE mixed up); leave out --user, STATUS_BOARD_USER and \
         the password, or the server key"
    )]
    LoginUnwanted {
        /// The endpoint asked.
        endpoint: String,
    },
    /// Ctrl-C or SIGTERM arrived while waiting.
    #[error("interrupted")]
    Interrupted,
    /// A socket operation failed for a reason other than silence.
    #[error("cannot {action}")]
    Socket {
        /// What we were doing.
        action: &'static str,
        /// What libzmq said.
        source: zmq::Error,
    },
}

impl RequestError {
    /// The endpoint the error is about, if it is about one.
    pub(crate) fn endpoint(&self) -> Option<&str> {
        match self {
            RequestError::Connect { endpoint, .. }
            | RequestError::NoReply { endpoint, .. }
            | RequestError::NothingListens { endpoint }
            | RequestError::NotZeroMq { endpoint }
            | RequestError::Publisher { endpoint }
            | RequestError::LoginRefused { endpoint, .. }
            | RequestError::LoginWanted { endpoint }
            | RequestError::LoginUnwanted { endpoint } => Some(endpoint),
            RequestError::Interrupted | RequestError::Socket { .. } => None,
        }
    }
}

pub(super) fn socket_error(action: &'static str) -> impl FnOnce(zmq::Error) -> RequestError {
    move |source| RequestError::Socket { action, source }
}
