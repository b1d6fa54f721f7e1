//! `--auth`: who may log in (the users file), how logins are checked (the ZAP
//! handler), and which names a logged-in user may change.
//!
//! Every endpoint needs a login (PLAIN, or CURVE with `--curve-secret`) but
//! the `--anonymous` ones, which need none and may only read. The user of
//! each message is the `User-Id` libzmq attaches to it from the login, and it
//! is checked against the current table on every write.

mod users;
mod zap;

use std::path::Path;
use std::sync::{Arc, Mutex};

pub(crate) use users::Users;
pub use users::{Credential, Rights, User, UsersError, glob_matches, hash_password};
pub(crate) use zap::{ANONYMOUS_DOMAIN, LOGIN_DOMAIN, ZapHandler};

/// The users table the ZAP thread reads and the serve loop replaces on SIGHUP.
#[derive(Debug, Clone)]
pub(crate) struct SharedUsers(Arc<Mutex<Arc<Users>>>);

impl SharedUsers {
    pub(crate) fn new(users: Users) -> SharedUsers {
        SharedUsers(Arc::new(Mutex::new(Arc::new(users))))
    }

    /// The table now; a later reload does not change it.
    pub(crate) fn current(&self) -> Arc<Users> {
        let guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(&guard)
    }

    /// Reads the users file again: all or nothing. On failure the old table
    /// stays, and the error says why.
    pub(crate) fn reload(&self, path: &Path) -> Result<Arc<Users>, UsersError> {
        let users = Arc::new(Users::load(path)?);
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard = Arc::clone(&users);
        Ok(users)
    }
}

/// Who sent a request, as its login says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// The server has no `--auth`: everyone may change everything, as the original.
    Open,
    /// No login: an `--anonymous` endpoint.
    Anonymous,
    /// Logged in as this user.
    User(String),
}

/// Why a write was refused for rights; the text is the error reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Forbidden {
    /// A user changing a name outside their rights.
    #[error("user '{user}' may not {verb} '{name}'")]
    NotTheirs {
        /// Who asked.
        user: String,
        /// `set` or `clear`.
        verb: &'static str,
        /// The name.
        name: String,
    },
    /// A write from an endpoint without login.
    #[error("anonymous clients may only read")]
    Anonymous,
}

impl Caller {
    /// Whether this caller may `verb` (`set`, `clear`) `name`, by `users`.
    pub(crate) fn may_change(
        &self,
        users: Option<&Users>,
        verb: &'static str,
        name: &str,
    ) -> Result<(), Forbidden> {
        match (self, users) {
            (Caller::Open, _) => Ok(()),
            (Caller::User(user), Some(users)) if users.may_change(user, name) => Ok(()),
            (Caller::User(user), _) => Err(Forbidden::NotTheirs {
                user: user.clone(),
                verb,
                name: name.to_owned(),
            }),
            (Caller::Anonymous, _) => Err(Forbidden::Anonymous),
        }
    }
}
