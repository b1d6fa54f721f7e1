//! Files that hold secrets (the users file, a CURVE key pair, a password):
//! read only when no one but their owner can read them, and what to tell
//! the user when one cannot be.

use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Why a secret file was not read, as the user is told it: `what` names the
/// file (`the users file PATH`, or the path alone).
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// It could not be opened or read.
    #[error("cannot read {what}")]
    Io {
        /// The file, as the user knows it.
        what: String,
        /// Why not.
        source: io::Error,
    },
    /// Group or others may read it.
    #[error("{what} is readable by group or others (mode {mode:04o}); chmod 600 it")]
    Exposed {
        /// The file, as the user knows it.
        what: String,
        /// Its permission bits.
        mode: u32,
    },
}

/// The text of `path`, if only its owner may read it; `kind` is what the
/// file is, said before its path in an error (`the users file`), or empty.
/// The mode is read from the opened file, so a file swapped in between
/// cannot slip through.
pub(crate) fn read_private(path: &Path, kind: &str) -> Result<String, SecretFileError> {
    let what = || match kind {
        "" => path.display().to_string(),
        kind => format!("{kind} {}", path.display()),
    };
    let io = |source| SecretFileError::Io {
        what: what(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::Exposed { what: what(), mode });
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_chain;
    use std::fs;

    #[test]
    fn a_secret_file_is_read_only_when_private_and_the_errors_name_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        fs::write(&path, "hush\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(read_private(&path, "the file").expect("private"), "hush\n");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = read_private(&path, "the users file").expect_err("exposed");
        assert_eq!(
            err.to_string(),
            format!(
                "the users file {} is readable by group or others (mode 0640); chmod 600 it",
                path.display()
            )
        );

        let missing = dir.path().join("missing");
        let err = read_private(&missing, "").expect_err("missing");
        let said = error_chain(&err);
        assert!(
            said.starts_with(&format!("cannot read {}: ", missing.display())),
            "{said}"
        );
        assert!(matches!(err, SecretFileError::Io { .. }), "{err:?}");
    }
}
