//! Logins (`--auth`): users files, the password every test user has, and
//! password hashes of a chosen cost.

#![allow(dead_code, reason = "each test crate uses a few of these items")]

use std::path::{Path, PathBuf};

/// Every test user's password.
pub const PASSWORD: &str = "correct horse";

/// A users file in a private temporary directory.
pub struct UsersFile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl UsersFile {
    /// `lines` of `NAME[:RIGHTS]`, each given [`PASSWORD`], mode 0600.
    pub fn new(lines: &[&str]) -> UsersFile {
        let hash = status_board::server::auth::hash_password(PASSWORD).expect("a hash");
        UsersFile::hashed(lines, &hash)
    }

    /// As [`UsersFile::new`], every password hashed as `hash` says (of
    /// [`PASSWORD`], at a cost of the test's choosing: [`hash_at_cost`]).
    pub fn hashed(lines: &[&str], hash: &str) -> UsersFile {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("users");
        let file = UsersFile { _dir: dir, path };
        file.write_hashed(lines, hash);
        file
    }

    /// Writes the file anew with these `lines`, as [`UsersFile::new`] does.
    pub fn write(&self, lines: &[&str]) {
        let hash = status_board::server::auth::hash_password(PASSWORD).expect("a hash");
        self.write_hashed(lines, &hash);
    }

    fn write_hashed(&self, lines: &[&str], hash: &str) {
        let text: String = lines
            .iter()
            .map(|line| match line.split_once(':') {
                Some((name, rights)) => format!("{name}:{hash}:{rights}\n"),
                None => format!("{line}:{hash}\n"),
            })
            .collect();
        write_private(&self.path, &text);
    }

    pub fn path(&self) -> &str {
        self.path.to_str().expect("UTF-8 path")
    }
}

/// The argon2id PHC string of `password` at the cost `params`, with a fixed
/// salt (a test's hash need not be unguessable, only as dear as it says).
pub fn hash_at_cost(password: &str, params: argon2::Params) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let argon2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").expect("salt");
    argon2
        .hash_password(password.as_bytes(), &salt)
        .expect("hash")
        .to_string()
}

/// Writes `text` to `path` readable by its owner only.
pub fn write_private(path: &Path, text: &str) {
    // Written aside and renamed: a reload never sees half a file.
    let aside = path.with_extension("new");
    std::fs::write(&aside, text).expect("write the users file");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&aside, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::rename(&aside, path).expect("rename the users file");
}
