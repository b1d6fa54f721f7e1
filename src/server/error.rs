//! The server's errors: why it could not start or had to stop
//! ([`ServerError`]), and why one request changed nothing ([`Rejected`]),
//! whose text is the error reply.

use crate::protocol::{ProtocolError, Refusal};
use crate::storage::StorageError;
use crate::store::BoardError;

use super::auth::{Forbidden, UsersError};

/// Why the server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// An endpoint was malformed, in use, or not ours to bind.
    #[error("cannot bind {endpoint}")]
    Bind {
        /// The endpoint as given.
        endpoint: String,
        /// What libzmq said.
        source: zmq::Error,
    },
    /// An endpoint's host is a name that resolves to no address.
    #[error("cannot bind {endpoint}")]
    Unresolved {
        /// The endpoint as given.
        endpoint: String,
        /// The name and what the resolver said.
        source: crate::endpoint::ResolveError,
    },
    /// The state file could not be opened, read or kept.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The etcd cluster of `--etcd` cannot be used.
    #[error(transparent)]
    Cluster(#[from] crate::store::ClusterError),
    /// The users file of `--auth` cannot be used.
    #[error(transparent)]
    Users(#[from] UsersError),
    /// The CURVE key pair of `--curve-secret` cannot be used.
    #[error(transparent)]
    Curve(#[from] crate::curve::CurveError),
    /// A thread beside the serve loop could not start.
    #[error("cannot start the {name} thread")]
    Thread {
        /// The thread's name.
        name: &'static str,
        /// What the system said.
        source: std::io::Error,
    },
    /// A socket operation failed for a reason no request caused.
    #[error("cannot {action}")]
    Socket {
        /// What we were doing.
        action: &'static str,
        /// What libzmq said.
        source: zmq::Error,
    },
}

/// Maps a libzmq error to [`ServerError::Socket`], saying what we were doing.
pub(super) fn socket_error(action: &'static str) -> impl FnOnce(zmq::Error) -> ServerError {
    move |source| ServerError::Socket { action, source }
}

/// Why a request changed nothing; its text is the error reply.
#[derive(Debug, thiserror::Error)]
pub(super) enum Rejected {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    Board(#[from] BoardError),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The update could not be stored; the details go to the server's log, not the client.
    #[error("the server cannot store updates right now; try again later")]
    Unstored,
    /// A gateway's etcd cluster has no quorum: the board is read-only.
    #[error("the board is read-only: its etcd cluster has no quorum; try again later")]
    NoQuorum,
}

impl Rejected {
    /// The word the error reply starts with, for programs.
    pub(super) fn refusal(&self) -> Refusal {
        match self {
            Rejected::Protocol(err) => err.refusal(),
            Rejected::Board(BoardError::Full { .. }) => Refusal::Full,
            Rejected::Forbidden(_) => Refusal::Forbidden,
            Rejected::Unstored | Rejected::NoQuorum => Refusal::Unavailable,
        }
    }

    /// A change the store could not take: the details to the log, and to the
    /// client only that it was not stored.
    pub(super) fn unstored(err: &StorageError) -> Rejected {
        super::console::not_stored(err);
        Rejected::Unstored
    }
}
