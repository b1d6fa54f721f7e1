//! Who the client logs in as, and with which password.
//!
//! A login is used when one is asked for: `--user` (or `STATUS_BOARD_USER`),
//! or a password in `STATUS_BOARD_PASSWORD` or the password file. The user is
//! then `--user`, `STATUS_BOARD_USER`, or the NAME; a watcher (`_`) with no
//! user reads anonymously. The password comes from `STATUS_BOARD_PASSWORD`,
//! else `~/.config/status-board/password` (refused unless only its owner can
//! read it), else a prompt on the terminal with no echo.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::protocol::POLL_NAME;

use super::RunError;

/// The environment variable for the user to log in as.
pub const USER_ENV: &str = "STATUS_BOARD_USER";

/// The environment variable for the password.
pub const PASSWORD_ENV: &str = "STATUS_BOARD_PASSWORD";

/// A PLAIN login.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// The user name.
    pub user: String,
    password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, not even in a debug print.
        f.debug_struct("Login").field("user", &self.user).finish()
    }
}

impl Login {
    /// Sets the login on a socket before it connects.
    pub fn apply(&self, socket: &zmq::Socket) -> Result<(), zmq::Error> {
        socket.set_plain_username(Some(&self.user))?;
        socket.set_plain_password(Some(&self.password))
    }
}

/// The login the command line and environment ask for, if any; `name` is
/// the client's NAME, `endpoint` where it connects (for the prompt).
pub fn resolve(user: Option<&str>, name: &str, endpoint: &str) -> Result<Option<Login>, RunError> {
    let env = |key| std::env::var(key).ok().filter(|v: &String| !v.is_empty());
    let user = user.map(str::to_owned).or_else(|| env(USER_ENV));
    let password_env = env(PASSWORD_ENV);
    let file = password_file();
    let file_exists = file.as_ref().is_some_and(|f| f.exists());
    if user.is_none() && password_env.is_none() && !file_exists {
        return Ok(None);
    }
    let user = match user {
        Some(user) => user,
        // A watcher with no user of its own reads anonymously.
        None if name == POLL_NAME => return Ok(None),
        None => name.to_owned(),
    };
    let password = match (password_env, file.filter(|_| file_exists)) {
        (Some(password), _) => password,
        (None, Some(file)) => read_password_file(&file)?,
        (None, None) => rpassword::prompt_password(format!("Password for {user} at {endpoint}: "))
            .map_err(|e| {
                RunError::Usage(format!(
                    "no password for '{user}': set {PASSWORD_ENV}, write it to \
                     ~/.config/status-board/password (mode 0600), or run on a terminal ({e})"
                ))
            })?,
    };
    Ok(Some(Login { user, password }))
}

/// `$XDG_CONFIG_HOME/status-board/password`, or `~/.config/status-board/password`.
fn password_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        })?;
    Some(base.join("status-board").join("password"))
}

/// The first line of the password file, which only its owner may read.
fn read_password_file(path: &std::path::Path) -> Result<String, RunError> {
    let unreadable = |e: std::io::Error| {
        RunError::Usage(format!(
            "cannot read the password file {}: {e}",
            path.display()
        ))
    };
    let mode = std::fs::metadata(path)
        .map_err(unreadable)?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(RunError::Usage(format!(
            "the password file {} is readable by group or others (mode {mode:04o}); chmod 600 it",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    Ok(text.lines().next().unwrap_or("").to_owned())
}
