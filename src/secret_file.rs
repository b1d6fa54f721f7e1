//! Files that hold secrets (the users file, a CURVE key pair, a password):
//! read only when no one but their owner can read them.

use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Why a secret file was not read.
#[derive(Debug)]
pub(crate) enum SecretFileError {
    /// It could not be opened or read.
    Io(io::Error),
    /// Group or others may read it: these permission bits.
    Exposed(u32),
}

impl SecretFileError {
    /// What to tell the user about `what` (`the users file PATH`, …).
    pub(crate) fn exposed_message(what: &str, mode: u32) -> String {
        format!("{what} is readable by group or others (mode {mode:04o}); chmod 600 it")
    }
}

/// The text of `path`, if only its owner may read it. The mode is read from
/// the opened file, so a file swapped in between cannot slip through.
pub(crate) fn read_private(path: &Path) -> Result<String, SecretFileError> {
    let mut file = std::fs::File::open(path).map_err(SecretFileError::Io)?;
    let mode = file
        .metadata()
        .map_err(SecretFileError::Io)?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::Exposed(mode));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(SecretFileError::Io)?;
    Ok(text)
}
