//! Who the client logs in as, and with which password.
//!
//! A login is used when one is asked for: `--user` (or `STATUS_BOARD_USER`),
//! or a password in `STATUS_BOARD_PASSWORD` or the password file. The user is
//! then `--user`, `STATUS_BOARD_USER`, or the NAME; a watcher (`_`) with no
//! user reads anonymously. The password comes from `STATUS_BOARD_PASSWORD`,
//! else `~/.config/status-board/password` (refused unless only its owner can
//! read it), else a prompt on the terminal with no echo.
//!
//! With the server's public key (`--server-key` or `STATUS_BOARD_SERVER_KEY`)
//! the client logs in by key instead, with its pair from
//! `~/.config/status-board/curve.key`, and the traffic is encrypted.

use std::path::PathBuf;

use crate::curve::{self, CurveError, KeyPair};
use crate::protocol::POLL_NAME;
use crate::secret_file::{SecretFileError, read_private};
use crate::visible::visible;

/// The environment variable for the user to log in as.
const USER_ENV: &str = "STATUS_BOARD_USER";

/// The environment variable for the password.
const PASSWORD_ENV: &str = "STATUS_BOARD_PASSWORD";

/// The environment variable for the server's CURVE public key.
const SERVER_KEY_ENV: &str = "STATUS_BOARD_SERVER_KEY";

/// Why no login could be made of what the command line and environment
/// give: a mistake in how the client was started, but for
/// [`LoginError::Interrupted`].
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// `--server-key` or `STATUS_BOARD_SERVER_KEY` is not a key.
    #[error("the server key: {0}")]
    ServerKey(String),
    /// No home directory to find or keep `curve.key` in.
    #[error("no HOME to {0} curve.key in")]
    NoHome(&'static str),
    /// A server key was given, and we have no key pair.
    #[error("no key pair at {}: make one with status_client --curve-keygen", .0.display())]
    NoKeyPair(PathBuf),
    /// Our key pair could not be read or written.
    #[error(transparent)]
    KeyPair(#[from] CurveError),
    /// The password file is unreadable, or others may read it.
    #[error(transparent)]
    PasswordFile(SecretFileError),
    /// A variable of ours in the environment is not UTF-8.
    #[error("{0}")]
    Environment(String),
    /// A password was wanted, and none could be had.
    #[error("{0}")]
    NoPassword(String),
    /// Ctrl-C at the password prompt.
    #[error("interrupted")]
    Interrupted,
}

/// How the client logs in.
#[derive(Clone, PartialEq, Eq)]
pub enum Login {
    /// PLAIN: a user and a password, in clear on the wire.
    Plain {
        /// The user name.
        user: String,
        /// Never printed.
        password: String,
    },
    /// CURVE: our key pair, encrypted to the server's public key.
    Curve {
        /// The server's public key.
        server: [u8; 32],
        /// Ours.
        pair: KeyPair,
    },
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password or the secret key, not even in a debug print.
        f.write_str(&self.who())
    }
}

impl Login {
    /// Sets the login on a socket before it connects.
    pub(crate) fn apply(&self, socket: &zmq::Socket) -> Result<(), zmq::Error> {
        match self {
            Login::Plain { user, password } => {
                socket.set_plain_username(Some(user))?;
                socket.set_plain_password(Some(password))
            }
            Login::Curve { server, pair } => {
                socket.set_curve_serverkey(server)?;
                socket.set_curve_publickey(&pair.public)?;
                socket.set_curve_secretkey(&pair.secret)
            }
        }
    }

    /// Who logs in, as the user reads it: `'alice'`, or `the key ABC…`.
    pub(crate) fn who(&self) -> String {
        match self {
            Login::Plain { user, .. } => format!("'{user}'"),
            Login::Curve { pair, .. } => format!("the key {}", pair.public_z85()),
        }
    }

    /// Why a server refuses this kind of login.
    pub(crate) fn refusal(&self) -> &'static str {
        match self {
            Login::Plain { .. } => "wrong user or password",
            Login::Curve { .. } => "a key the server does not know",
        }
    }
}

/// The login the command line and environment ask for, if any; `name` is
/// the client's NAME, `endpoint` where it connects (for the prompt).
pub(crate) fn resolve(
    user: Option<&str>,
    server_key: Option<&str>,
    name: &str,
    endpoint: &str,
) -> Result<Option<Login>, LoginError> {
    let env = |key| crate::cli::env_text(key).map_err(LoginError::Environment);
    let server_key = match server_key {
        Some(key) => Some(key.to_owned()),
        None => env(SERVER_KEY_ENV)?,
    };
    if let Some(server) = server_key {
        let server = curve::decode_key(&server).map_err(LoginError::ServerKey)?;
        let path = config_file("curve.key").ok_or(LoginError::NoHome("find"))?;
        let pair = KeyPair::read(&path).map_err(|e| match e {
            CurveError::Secret(SecretFileError::Io { .. }) => LoginError::NoKeyPair(path.clone()),
            other => LoginError::KeyPair(other),
        })?;
        return Ok(Some(Login::Curve { server, pair }));
    }
    let user = match user {
        Some(user) => Some(user.to_owned()),
        None => env(USER_ENV)?,
    };
    let password_env = env(PASSWORD_ENV)?;
    let file = config_file("password");
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
        (None, None) => ask_password(&user, endpoint)?,
    };
    Ok(Some(Login::Plain { user, password }))
}

/// The password of `user` at `endpoint`, typed at a prompt on the terminal
/// with no echo. Ctrl-C there is [`LoginError::Interrupted`].
pub(crate) fn ask_password(user: &str, endpoint: &str) -> Result<String, LoginError> {
    let prompt = format!(
        "Password for '{}' at {}: ",
        visible(user),
        visible(endpoint)
    );
    // rpassword reads the terminal with its signals off, restores it, and
    // raises SIGINT itself after Ctrl-C: the shutdown flag is up too.
    rpassword::prompt_password(prompt).map_err(|e| match e.kind() {
        std::io::ErrorKind::Interrupted => LoginError::Interrupted,
        std::io::ErrorKind::UnexpectedEof => LoginError::NoPassword(format!(
            "no password for '{}' (end of input at the prompt)",
            visible(user)
        )),
        _ => LoginError::NoPassword(format!(
            "no password for '{}': set {PASSWORD_ENV}, write it to \
             ~/.config/status-board/password (mode 0600), or run on a terminal ({e})",
            visible(user)
        )),
    })
}

/// `status_client --curve-keygen`: a new key pair in `~/.config/status-board/curve.key`.
pub fn curve_keygen() -> Result<KeyPair, LoginError> {
    let path = config_file("curve.key").ok_or(LoginError::NoHome("keep"))?;
    Ok(KeyPair::write_new(&path)?)
}

/// `$XDG_CONFIG_HOME/status-board/NAME`, or `~/.config/status-board/NAME`.
fn config_file(name: &str) -> Option<PathBuf> {
    let base = crate::xdg::base_dir("XDG_CONFIG_HOME", ".config")?;
    Some(base.join("status-board").join(name))
}

/// The first line of the password file, which only its owner may read.
fn read_password_file(path: &std::path::Path) -> Result<String, LoginError> {
    let text = read_private(path, "the password file").map_err(LoginError::PasswordFile)?;
    Ok(text.lines().next().unwrap_or("").to_owned())
}
